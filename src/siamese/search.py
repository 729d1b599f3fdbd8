"""Image search: the k gallery images nearest to each query, with distances and the verdict at τ.

    python -m siamese.search index=photos.idx query=queries/ k=10 out=results.csv
    python -m siamese.search index=photos.idx query=a.jpg k=10 html=results.html
    python -m siamese.search model=RUN/export/model.onnx gallery=images/ query=a.png k=5

With `index=` (built by `python -m siamese.index`) the gallery is not embedded again: only the
queries are, by the index's own model (or `model=`/`ckpt_path=`, refused if it is another one).
With `gallery=` the folder is embedded on the spot, in batches on worker threads. `query=` is an
image, a folder of images or a list file (`.txt`: one path a line, relative to it); an unreadable
query among many is skipped with a warning naming it. `out=` writes a CSV or JSON table,
`html=`/`png=` a picture grid; without them the answers are printed."""

import logging
from pathlib import Path

from siamese.core.atomic import new_file
from siamese.data.images import list_images
from siamese.gallery.build import build_index
from siamese.gallery.embed import embed_files
from siamese.gallery.nearest import Match, Searcher
from siamese.gallery.results import write_html, write_png, write_table
from siamese.gallery.store import GalleryIndex, load_index
from siamese.inference import Model, load_model
from siamese.keyvalue import UsageError, argv, boolean, integers, parse
from siamese.verify import model_argument

USAGE = (
    "python -m siamese.search index=FILE|(ckpt_path=FILE|model=FILE gallery=DIR) "
    "query=IMAGE|DIR|LIST.txt [k=5] [out=FILE.csv|.json] [html=FILE] [png=FILE] [exact=false] "
    "[batch_size=256] [workers=N] [trust=false]"
)
LIST_SUFFIXES = (".txt", ".lst")
log = logging.getLogger(__name__)


def query_files(query: str | Path) -> list[Path]:
    """An image, every image of a folder, or the paths a list file names (relative to it)."""
    query = Path(query)
    if query.is_dir():
        return list_images(query)
    if query.suffix.lower() in LIST_SUFFIXES:
        if not query.is_file():
            raise FileNotFoundError(f"query list {query} does not exist")
        lines = [line.strip() for line in query.read_text().splitlines()]
        files = [query.parent / line for line in lines if line and not line.startswith("#")]
        if not files:
            raise ValueError(f"query list {query} names no image")
        return files
    return [query]


def embed_queries(model: Model, files: list[Path], batch_size: int, workers: int | None):
    """(the readable queries, their embeddings); one unreadable query alone is an error."""
    embeddings, bad = embed_files(model, files, batch_size, workers, desc="queries")
    if bad and len(files) == 1:
        raise ValueError(bad[0][1])
    if len(bad) == len(files):
        raise ValueError(f"none of the {len(files)} queries could be read")
    skipped = {i for i, _ in bad}
    return [f for i, f in enumerate(files) if i not in skipped], embeddings


def search_index(
    index: GalleryIndex,
    model: Model,
    queries: list[Path],
    k: int = 5,
    exact: bool = False,
    batch_size: int = 256,
    workers: int | None = None,
) -> list[Match]:
    """Every readable query's k nearest gallery images (exact, or by the index's FAISS index)."""
    found, embeddings = embed_queries(model, queries, batch_size, workers)
    searcher = Searcher(index, exact=exact)
    return searcher.matches([str(f) for f in found], embeddings, k, model.threshold)


def search(
    model: str | Path | Model,
    gallery: str | Path,
    query: str | Path,
    k: int = 5,
    batch_size: int = 256,
) -> list[tuple[Path, float]]:
    """The k gallery files nearest to one query, with their distances, nearest first."""
    if k < 1:
        raise ValueError(f"k must be >= 1 (the number of nearest images to list), got {k}")
    model = model if isinstance(model, Model) else load_model(model)
    index = _gallery_index(model, gallery, batch_size, None)
    matches = search_index(index, model, [Path(query)], k, batch_size=batch_size)
    return [(index.root / m.file, m.distance) for m in matches]


def _gallery_index(model: Model, gallery, batch_size: int, workers: int | None) -> GalleryIndex:
    """A gallery folder embedded now, kept in memory (exact search)."""
    index = build_index(
        model, gallery, approximate="exact", batch_size=batch_size, num_workers=workers
    )
    if index.skipped:
        log.warning(
            "warning: skipped %d of %d gallery images that could not be read",
            len(index.skipped),
            len(index) + len(index.skipped),
        )
    return index


def index_model(args: dict[str, str], index: GalleryIndex, index_path: str, usage: str) -> Model:
    """The model given (it must be the index's own), else the one the index was built with."""
    if args.get("ckpt_path") or args.get("model"):
        model = model_argument(args, usage)
    else:
        path = Path(index.model["path"])
        if not path.is_file():
            raise SystemExit(
                f"error: index {index_path} was built with model {path}, which is gone: give "
                "model=FILE (the same model, moved)"
            )
        trust = boolean(args, "trust", usage)
        model = load_model(path, checkpoint=path.suffix not in (".onnx", ".pt"), trust=trust)
    index.check_model(model, index_path)
    return model


def main() -> None:
    keys = {"ckpt_path": "", "model": "", "gallery": "", "index": "", "query": None, "k": "5",
            "out": "", "html": "", "png": "", "exact": "false", "batch_size": "256",
            "workers": "", "trust": "false"}  # fmt: skip
    args, _ = parse(argv(), USAGE, keys)
    numbers = integers(args, {"k": 1, "batch_size": 1}, USAGE)
    workers = integers(args, {"workers": 0}, USAGE)["workers"] if args["workers"] else None
    exact = boolean(args, "exact", USAGE)
    if bool(args["index"]) == bool(args["gallery"]):
        raise UsageError("give exactly one of index=FILE or gallery=DIR", USAGE)
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    try:
        if args["index"]:
            index = load_index(args["index"])
            model = index_model(args, index, args["index"], USAGE)
        else:
            model = model_argument(args, USAGE)
            index = _gallery_index(model, args["gallery"], numbers["batch_size"], workers)
        queries = query_files(args["query"])
        matches = search_index(
            index, model, queries, numbers["k"], exact, numbers["batch_size"], workers
        )
        report(matches, index, model, args)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None


def report(matches: list[Match], index: GalleryIndex, model: Model, args: dict) -> None:
    """Tables and pictures where asked (never over an earlier file); else the answers printed."""
    written = []
    for key, write in (
        ("out", lambda p: write_table(matches, p)),
        ("html", lambda p: write_html(matches, index.root, p, model.threshold)),
        ("png", lambda p: write_png(matches, index.root, p)),
    ):
        if args[key]:
            path = new_file(args[key])
            write(path)
            written.append(path)
    if written:
        queries = len({m.query for m in matches})
        print(
            f"{queries} queries, {len(matches)} answers; written to {', '.join(map(str, written))}"
        )
        return
    several = len({m.query for m in matches}) > 1
    for m in matches:
        if several and m.rank == 1:
            print(f"query {m.query}")
        verdict = "same" if m.same else "different"
        print(f"{m.rank:3d}  {m.distance:.4f}  {index.root / m.file}  {verdict}")


if __name__ == "__main__":
    main()
