"""The search service (FastAPI, the optional extra `siamese[serve]`): an index and its model
behind HTTP.

    POST /embed          multipart `file`            → {"embedding": [...], "dim"}
    POST /verify         multipart `a`, `b`           → {"distance", "threshold", "same"}
    POST /search?k=5     multipart `file`            → {"results": [{"rank", "file", "distance",
                                                          "same", "url"}], ...}
    GET  /gallery/{row}  a gallery image (the `url` of a result)
    GET  /health         {"status": "ok", "images", "model", "search", ...}
    GET  /               a page: drop an image, see its matches

A request body over `max_bytes` gets 413, an upload that is no readable image 415, a missing
field or a bad `k` 422; an unexpected failure is a 500 for that request, never the end of the
service. Uploads are decoded by `load_image`, as training decoded its images.
"""

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from siamese.data.images import ImageDecodeError, load_image
from siamese.gallery.nearest import Searcher
from siamese.gallery.page import PAGE
from siamese.gallery.store import GalleryIndex
from siamese.inference import Model

MAX_K = 1000
Upload = Annotated[UploadFile, File()]


def _decode(model: Model, upload: UploadFile):
    """The upload as the model's input image (1, C, H, W); 415 when it is not a readable image."""
    data = upload.file.read()
    name = upload.filename or "upload"
    if not data:
        raise HTTPException(415, f"{name} is empty: send an image file")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        try:
            image = load_image(path, model.channels, model.image_size, model.resize)
        except ImageDecodeError as err:
            cause = err.__cause__ or err
            detail = f"{name} is not an image this service can read: {cause}"
            raise HTTPException(415, detail) from None
    return image.unsqueeze(0)


class BodySizeLimit:
    """413 with a JSON reason for a request body over `max_bytes`: at once when its declared
    Content-Length is over, else once the bytes read pass it (a chunked upload)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    def _detail(self, size: str) -> str:
        return (
            f"the request's {size} bytes are over this service's limit of {self.max_bytes} "
            "bytes (python -m siamese.serve max_mb=...)"
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            response = JSONResponse({"detail": self._detail(length.decode())}, status_code=413)
            return await response(scope, receive, send)
        read = 0

        async def counted():
            nonlocal read
            message = await receive()
            read += len(message.get("body", b""))
            if read > self.max_bytes:  # FastAPI answers an HTTPException raised while reading
                raise HTTPException(413, self._detail(f"{read}+"))
            return message

        await self.app(scope, counted, send)


def create_app(index: GalleryIndex, model: Model, searcher: Searcher, max_bytes: int) -> FastAPI:
    """The service of one index; `model` must be the index's own (checked by the caller)."""
    app = FastAPI(title="siamese search")
    app.add_middleware(BodySizeLimit, max_bytes=max_bytes)
    tau = model.threshold
    threshold = None if tau != tau else tau  # NaN (an export without τ) as JSON null

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE

    @app.get("/health")
    def health() -> dict:
        return {
            "status": "ok",
            "images": len(index),
            "model": str(model.path),
            "distance": model.distance,
            "threshold": threshold,
            "search": searcher.method,
            "max_bytes": max_bytes,
        }

    @app.post("/embed")
    def embed(file: Upload) -> dict:
        e = model.embed(_decode(model, file))[0]
        return {"embedding": e.tolist(), "dim": e.numel()}

    @app.post("/verify")
    def verify(a: Upload, b: Upload) -> dict:
        ea, eb = (model.embed(_decode(model, f))[0] for f in (a, b))
        d = float(model.distance_between(ea, eb))
        return {"distance": d, "threshold": threshold, "same": d < tau}

    @app.post("/search")
    def search(file: Upload, k: Annotated[int, Query(ge=1, le=MAX_K)] = 5) -> dict:
        query = model.embed(_decode(model, file))
        matches = searcher.matches([file.filename or "upload"], query, k, tau)
        results = [m.record() | {"url": f"/gallery/{m.row}"} for m in matches]
        return {"k": k, "threshold": threshold, "search": searcher.method, "results": results}

    @app.get("/gallery/{row}")
    def gallery_image(row: int) -> FileResponse:
        if not 0 <= row < len(index) or not index.path_of(row).is_file():
            raise HTTPException(404, f"no gallery image {row}")
        return FileResponse(index.path_of(row))

    return app
