"""A persistent index of a gallery folder, so that a search embeds only its queries.

    python -m siamese.index build model=RUN/export/model.onnx gallery=photos/ index=photos.idx
    python -m siamese.index update index=photos.idx      # only new, changed and removed files

`build` embeds every image below the folder (in batches, decoded on worker threads, with a
progress bar; an unreadable image is skipped and named) and writes the index file atomically; it
never replaces an existing one. `update` re-embeds only the files whose size or modification time
changed, adds the new ones, drops the removed ones, and refuses a model other than the index's.
`approximate=auto` adds a FAISS index from 50,000 images (`exact`, `ivf`, `hnsw` choose), its
recall@10 against exact search printed; `dtype=float16` halves the embeddings' size."""

import logging
import time
from pathlib import Path

from siamese.gallery.build import build_index, check_settings, update_index
from siamese.gallery.store import GalleryIndex, load_index
from siamese.keyvalue import UsageError, argv, integers, parse
from siamese.search import index_model
from siamese.verify import model_argument

USAGE = (
    "python -m siamese.index build ckpt_path=FILE|model=FILE gallery=DIR index=FILE "
    "[dtype=float32|float16] [approximate=auto|exact|ivf|hnsw] [target_recall=0.95] "
    "[batch_size=256] [workers=N] [trust=false]\n"
    "       python -m siamese.index update index=FILE [model=FILE] [batch_size=256] [workers=N] "
    "[trust=false]"
)
KEYS = {
    "build": {"ckpt_path": "", "model": "", "gallery": None, "index": None, "dtype": "float32",
              "approximate": "auto", "target_recall": "0.95", "batch_size": "256",
              "workers": "", "trust": "false"},
    "update": {"ckpt_path": "", "model": "", "index": None, "batch_size": "256", "workers": "",
               "trust": "false"},
}  # fmt: skip


def summary(index: GalleryIndex, path: str | Path) -> str:
    dim = index.embeddings.shape[1]
    approximate = index.approximate
    search = "exact search"
    if approximate is not None:
        knob = "nprobe" if approximate["kind"] == "ivf" else "efSearch"
        search = (
            f"FAISS {approximate['kind'].upper()} ({knob} {approximate['knob']}), recall@"
            f"{approximate['k']} {approximate['recall']:.3f} against exact search"
        )
    return (
        f"{path}: {len(index)} images ({dim}-d {index.settings['dtype']}), "
        f"{len(index.skipped)} unreadable skipped; {search}"
    )


def main() -> None:
    words = [a for a in argv() if "=" not in a]
    if not words or words[0] not in KEYS:
        if any(a in ("-h", "--help") for a in argv()):
            print(f"usage: {USAGE}")
            raise SystemExit(0)
        raise UsageError(f"first say build or update, got {words[:1] or 'nothing'}", USAGE)
    command = words[0]
    args, _ = parse(argv(), USAGE, KEYS[command], positional=1)
    sizes = integers(args, {"batch_size": 1}, USAGE)
    workers = integers(args, {"workers": 0}, USAGE)["workers"] if args["workers"] else None
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    path = Path(args["index"])
    start = time.perf_counter()
    try:
        if command == "build":
            index = _build(args, path, sizes["batch_size"], workers)
            print(f"built in {time.perf_counter() - start:.1f} s")
        else:
            index = load_index(path)
            model = index_model(args, index, args["index"], USAGE)
            index, changes = update_index(index, model, sizes["batch_size"], workers, path)
            print(f"{changes.describe()}; updated in {time.perf_counter() - start:.1f} s")
            if not changes:
                print(f"{path} is up to date")
                return
        index.save(path)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    print(summary(index, path))


def _build(args: dict, path: Path, batch_size: int, workers: int | None) -> GalleryIndex:
    if path.exists():
        raise FileExistsError(
            f"index {path} exists: bring it up to date with python -m siamese.index update "
            f"index={path}, or give another index= (an index is never overwritten)"
        )
    try:
        target_recall = float(args["target_recall"])
    except ValueError:
        problem = f"target_recall must be a number, got {args['target_recall']!r}"
        raise UsageError(problem, USAGE) from None
    check_settings(
        {"dtype": args["dtype"], "approximate": args["approximate"], "target_recall": target_recall}
    )
    model = model_argument(args, USAGE)
    return build_index(
        model,
        args["gallery"],
        args["dtype"],
        args["approximate"],
        target_recall,
        batch_size,
        workers,
    )


if __name__ == "__main__":
    main()
