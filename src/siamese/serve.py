"""Serve an index over HTTP: `python -m siamese.serve index=photos.idx port=8000`.

    curl -F file=@a.jpg 'http://127.0.0.1:8000/search?k=5'   # the k nearest, as JSON
    curl -F a=@a.jpg -F b=@b.jpg http://127.0.0.1:8000/verify
    curl -F file=@a.jpg http://127.0.0.1:8000/embed
    open http://127.0.0.1:8000/                               # a page: drop an image

FastAPI on uvicorn (`pip install 'siamese[serve]'`); the routes are in `siamese.gallery.app`.
It listens on 127.0.0.1 unless `host=` says otherwise; request bodies over `max_mb` get 413."""

import socket

from siamese.gallery.nearest import Searcher
from siamese.gallery.store import load_index
from siamese.keyvalue import UsageError, argv, boolean, integers, parse
from siamese.search import index_model

USAGE = (
    "python -m siamese.serve index=FILE [port=8000] [host=127.0.0.1] [max_mb=10] [exact=false] "
    "[model=FILE|ckpt_path=FILE] [trust=false]"
)


def main() -> None:
    keys = {"index": None, "port": "8000", "host": "127.0.0.1", "max_mb": "10",
            "exact": "false", "model": "", "ckpt_path": "", "trust": "false"}  # fmt: skip
    args, _ = parse(argv(), USAGE, keys)
    numbers = integers(args, {"port": 1, "max_mb": 1}, USAGE)
    if numbers["port"] > 65535:
        raise UsageError(f"port must be <= 65535, got {numbers['port']}", USAGE)
    exact = boolean(args, "exact", USAGE)
    try:
        import uvicorn

        from siamese.gallery.app import create_app
    except ImportError as err:
        raise SystemExit(
            f"error: the service needs FastAPI and uvicorn ({err}): pip install 'siamese[serve]'"
        ) from None
    try:
        index = load_index(args["index"])
        model = index_model(args, index, args["index"], USAGE)
        searcher = Searcher(index, exact=exact)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    app = create_app(index, model, searcher, numbers["max_mb"] * 2**20)
    # the socket listens before the line is printed: whoever waits for it can connect at once
    # (requests queue until the service takes them); a port in use fails here, naming it
    try:
        sock = socket.create_server((args["host"], numbers["port"]))
    except OSError as err:
        raise SystemExit(
            f"error: cannot listen on {args['host']}:{numbers['port']}: {err}"
        ) from None
    print(f"serving {args['index']} ({len(index)} images, {searcher.method}) on "
          f"http://{args['host']}:{numbers['port']}/", flush=True)  # fmt: skip
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


if __name__ == "__main__":
    main()
