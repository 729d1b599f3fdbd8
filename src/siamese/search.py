"""Image search: `python -m siamese.search ckpt_path=FILE gallery=DIR query=IMAGE k=5` (or
`model=RUN/export/model.onnx`, a .pt or a .ckpt) prints the k gallery images nearest to the query,
with their distances. The gallery is embedded in batches; an unreadable gallery image is skipped
with a warning naming it."""

import logging
from pathlib import Path

import torch

from siamese.core.distances import distance_matrix
from siamese.inference import Model, load_images, load_model
from siamese.keyvalue import UsageError, argv, parse
from siamese.verify import model_argument

USAGE = (
    "python -m siamese.search ckpt_path=FILE|model=FILE gallery=DIR query=IMAGE [k=5] "
    "[batch_size=256] [trust=false]"
)
log = logging.getLogger(__name__)


def _gallery(gallery: str | Path) -> list[Path]:
    from siamese.data.images import list_images

    if Path(gallery).is_file():
        raise NotADirectoryError(f"gallery {gallery} is a file, not a folder of images")
    return list_images(gallery)


def _readable(model: Model, files: list[Path]) -> tuple[torch.Tensor | None, list[Path]]:
    """The batch's images that decode, and their files; the others are logged and dropped."""
    images, kept = [], []
    for p in files:
        try:
            images.append(load_images(model, [p])[0])
            kept.append(p)
        except (OSError, ValueError) as err:
            log.warning("warning: skipped gallery image %s: %s", p, err)
    return (torch.stack(images) if images else None), kept


def search(
    model: str | Path | Model,
    gallery: str | Path,
    query: str | Path,
    k: int = 5,
    batch_size: int = 256,
) -> list[tuple[Path, float]]:
    """The k gallery files nearest to the query, with their distances, nearest first."""
    if k < 1:
        raise ValueError(f"k must be >= 1 (the number of nearest images to list), got {k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model = model if isinstance(model, Model) else load_model(model)
    q = model.embed(load_images(model, [query]))
    files = _gallery(gallery)
    distances, found = [], []
    for start in range(0, len(files), batch_size):
        batch, kept = _readable(model, files[start : start + batch_size])
        if batch is not None:
            distances.append(distance_matrix(q, model.embed(batch), model.distance)[0])
            found += kept
    skipped = len(files) - len(found)
    if not found:
        raise ValueError(f"gallery {gallery}: none of its {len(files)} images could be read")
    if skipped:
        log.warning(
            "warning: skipped %d of %d gallery images that could not be read", skipped, len(files)
        )
    d = torch.cat(distances)
    top = torch.topk(d, min(k, len(found)), largest=False)
    return [(found[i], float(v)) for v, i in zip(top.values, top.indices.tolist(), strict=True)]


def main() -> None:
    args, _ = parse(
        argv(),
        USAGE,
        {
            "ckpt_path": "",
            "model": "",
            "trust": "false",
            "gallery": None,
            "query": None,
            "k": "5",
            "batch_size": "256",
        },
    )
    numbers = {}
    for key in ("k", "batch_size"):
        try:
            numbers[key] = int(args[key])
        except ValueError:
            raise UsageError(f"{key} must be an integer, got {args[key]!r}", USAGE) from None
        if numbers[key] < 1:
            raise UsageError(f"{key} must be >= 1, got {numbers[key]}", USAGE)
    model = model_argument(args, USAGE)
    logging.basicConfig(format="%(message)s")
    try:
        results = search(model, args["gallery"], args["query"], numbers["k"], numbers["batch_size"])
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    for rank, (path, d) in enumerate(results, start=1):
        print(f"{rank:3d}  {d:.4f}  {path}")


if __name__ == "__main__":
    main()
