"""Build an index of a gallery folder, or bring one up to date: `update` embeds only the files
added or changed since (by size and modification time) and drops the removed ones, and gives the
index a fresh build would give."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from siamese.core.errors import in_range, one_of
from siamese.data.images import list_images
from siamese.gallery.approximate import KINDS, Approximate, choose_kind
from siamese.gallery.embed import embed_files
from siamese.gallery.store import DTYPES, GalleryIndex, Skipped, fingerprint
from siamese.inference import Model

log = logging.getLogger(__name__)


@dataclass
class Scan:
    files: list[str]  # relative to the gallery folder, sorted
    sizes: list[int]
    mtimes: list[int]  # ns


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def describe(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged"
        )


def scan(root: Path) -> Scan:
    """Every image below `root` (hidden files and folders left out), sorted by relative path."""
    found = Scan([], [], [])
    for p in list_images(root):
        st = p.stat()
        found.files.append(p.relative_to(root).as_posix())
        found.sizes.append(st.st_size)
        found.mtimes.append(st.st_mtime_ns)
    return found


def build_index(
    model: Model,
    gallery: str | Path,
    dtype: str = "float32",
    approximate: str = "auto",
    target_recall: float = 0.95,
    batch_size: int = 256,
    num_workers: int | None = None,
) -> GalleryIndex:
    """Every image of `gallery` embedded by `model`; unreadable ones skipped and named."""
    settings = {"dtype": dtype, "approximate": approximate, "target_recall": target_recall}
    check_settings(settings)
    root = Path(gallery).expanduser()
    if root.is_file():
        raise NotADirectoryError(f"gallery {gallery} is a file, not a folder of images")
    if not root.is_dir():
        raise FileNotFoundError(f"gallery folder {gallery} does not exist")
    root = root.resolve()
    empty = GalleryIndex(
        root,
        [],
        torch.zeros(0),
        torch.zeros(0),
        torch.zeros(0, 0),
        fingerprint(model),
        settings=settings,
    )
    index, _ = _refresh(empty, model, scan(root), batch_size, num_workers)
    return index


def update_index(
    index: GalleryIndex,
    model: Model,
    batch_size: int = 256,
    num_workers: int | None = None,
    path: str | Path = "(in memory)",
) -> tuple[GalleryIndex, Changes]:
    """`index` (read from `path`) brought up to date with its folder; `model` must be the
    index's own (ModelMismatch otherwise)."""
    index.check_model(model, path)
    return _refresh(index, model, scan(index.root), batch_size, num_workers)


def _refresh(index, model, now: Scan, batch_size, num_workers) -> tuple[GalleryIndex, Changes]:
    before = {f: i for i, f in enumerate(index.files)}
    skipped_before = {s.file: s for s in index.skipped}
    changes, reuse, skipped, todo = Changes(), {}, {}, []
    sizes, mtimes = index.sizes.tolist(), index.mtimes.tolist()  # not 1M tensor look-ups
    for f, size, mtime in zip(now.files, now.sizes, now.mtimes, strict=True):
        i, bad = before.get(f), skipped_before.get(f)
        if i is not None and (sizes[i], mtimes[i]) == (size, mtime):
            reuse[f] = i
        elif bad is not None and (bad.size, bad.mtime_ns) == (size, mtime):
            skipped[f] = bad  # unchanged and still unreadable: not decoded again
        else:
            (changes.changed if i is not None or bad is not None else changes.added).append(f)
            todo.append(f)
    present = set(now.files)
    changes.removed = [f for f in [*before, *skipped_before] if f not in present]
    changes.unchanged = len(reuse) + len(skipped)
    if not changes and index.files:
        return index, changes
    fresh, bad = embed_files(model, [index.root / f for f in todo], batch_size, num_workers)
    bad_at = dict(bad)
    readable = [f for j, f in enumerate(todo) if j not in bad_at]
    stat = {f: (s, t) for f, s, t in zip(now.files, now.sizes, now.mtimes, strict=True)}
    for j, message in bad:
        f = todo[j]
        skipped[f] = Skipped(f, *stat[f], message)
    files = sorted([*reuse, *readable])
    if not files:
        raise ValueError(f"gallery {index.root}: none of its {len(now.files)} images could be read")
    dtype = DTYPES[index.settings["dtype"]]
    # the pool: the kept rows, then the fresh ones; each file's row in it
    row = {f: p for p, f in enumerate([*reuse, *readable])}
    kept = index.embeddings[list(reuse.values())]
    pool = torch.cat([t.to(dtype) for t in (kept, fresh) if len(t)])
    updated = GalleryIndex(
        root=index.root,
        files=files,
        sizes=torch.tensor([stat[f][0] for f in files], dtype=torch.int64),
        mtimes=torch.tensor([stat[f][1] for f in files], dtype=torch.int64),
        embeddings=pool[[row[f] for f in files]],
        model=fingerprint(model),
        skipped=[skipped[f] for f in sorted(skipped)],
        settings=index.settings,
    )
    updated.approximate = _approximate(updated)
    return updated, changes


def _approximate(index: GalleryIndex) -> dict | None:
    kind = choose_kind(index.settings["approximate"], len(index))
    if kind == "exact":
        return None
    built = Approximate.build(
        index.embeddings, index.distance, kind, index.settings["target_recall"]
    )
    log.info("%s", built.describe())
    return built.state()


def check_settings(settings: dict) -> None:
    """dtype, approximate and target_recall, before any work."""
    one_of("dtype", settings["dtype"], tuple(DTYPES))
    one_of("approximate", settings["approximate"], KINDS)
    in_range("target_recall", settings["target_recall"], 0.0, 1.0)
