"""Your own data: an image folder or a CSV manifest, decoded once into an `ImageSet`.

Both are callables (the data module calls `source()`), decode every image with `load_image`
(the same path `verify` and `search` use), cache the decoded tensor on disk, and switch to
streaming (`LazyImages`) when the decoded set would exceed `max_memory_gb`. Every error names the
file, line or class and says what to do.
"""

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from siamese.data.decode import decode_cached
from siamese.data.images import IMAGE_SUFFIXES, check_decode_options
from siamese.data.imageset import FREE, SPLIT_CODES, ImageSet
from siamese.data.lazy import LazyImages

log = logging.getLogger(__name__)


def default_workers() -> int:
    return min(8, os.cpu_count() or 1)


@dataclass
class _Entry:
    path: Path
    label: str
    split: int = FREE
    where: str = ""  # where errors point besides the file: "m.csv, line 12"


class _Decoding:
    """The decode options and the steps shared by the folder and manifest sources."""

    def __init__(
        self,
        image_size: int,
        channels: int,
        resize: str,
        num_workers: int | None,
        cache: bool,
        skip_bad: bool,
        max_memory_gb: float,
    ):
        check_decode_options(channels, image_size, resize)
        if max_memory_gb <= 0:
            raise ValueError(f"data.max_memory_gb must be > 0, got {max_memory_gb}")
        self.image_size, self.channels, self.resize = image_size, channels, resize
        self.num_workers = default_workers() if num_workers is None else num_workers
        self.cache, self.skip_bad, self.max_memory_gb = cache, skip_bad, max_memory_gb
        self.stats: dict = {}  # what the last call did: counts, cache use, streaming

    def _build(self, entries: list[_Entry], base: Path, name: str, what: str) -> ImageSet:
        c, s = self.channels, self.image_size
        streaming = len(entries) * c * s * s > self.max_memory_gb * 2**30
        decoded = decode_cached(
            [e.path for e in entries],
            base,
            name,
            c,
            s,
            self.resize,
            self.num_workers,
            self.cache,
            keep=not streaming,
        )
        good = torch.ones(len(entries), dtype=torch.bool)
        if decoded.bad:
            shown = "\n  ".join(
                f"{entries[i].where}: {m}" if entries[i].where else m for i, m in decoded.bad[:10]
            )
            more = f"\n  ... and {len(decoded.bad) - 10} more" if len(decoded.bad) > 10 else ""
            if not self.skip_bad:
                raise ValueError(
                    f"{len(decoded.bad)} unreadable image(s) in {what}:\n  {shown}{more}\n"
                    "Replace or delete them, or set data.skip_bad=true to skip and count them."
                )
            log.warning(
                "skipped %d unreadable image(s) in %s:\n  %s%s", len(decoded.bad), what, shown, more
            )
            good[[i for i, _ in decoded.bad]] = False
        kept_entries = [e for e, g in zip(entries, good.tolist(), strict=True) if g]
        images = decoded.images
        # classes with fewer than 2 images cannot give a positive pair: left out, by name
        counts: dict[str, int] = {}
        for e in kept_entries:
            counts[e.label] = counts.get(e.label, 0) + 1
        small = sorted(k for k, v in counts.items() if v < 2)
        if small:
            log.warning(
                "left out %d class(es) of %s with fewer than 2 images: %s",
                len(small),
                what,
                ", ".join(repr(k) for k in small),
            )
        keep = torch.tensor([counts[e.label] >= 2 for e in kept_entries], dtype=torch.bool)
        names = sorted(k for k, v in counts.items() if v >= 2)
        if len(names) < 2:
            raise ValueError(
                f"{what} has {len(names)} usable class(es) {names}; at least 2 classes with 2 or "
                "more readable images each are needed"
            )
        final = [e for e, k in zip(kept_entries, keep.tolist(), strict=True) if k]
        index = {n: i for i, n in enumerate(names)}
        labels = torch.tensor([index[e.label] for e in final], dtype=torch.int64)
        split = torch.tensor([e.split for e in final], dtype=torch.int64)
        if streaming:
            images = LazyImages([e.path for e in final], c, s, self.resize, self.num_workers)
        elif not bool(keep.all()):
            images = images[keep]
        self.stats = {
            "images": len(final),
            "classes": len(names),
            "bad": len(decoded.bad),
            "left_out_classes": small,
            "from_cache": decoded.from_cache,
            "cache_file": decoded.cache_file,
            "streaming": streaming,
        }
        log.info(
            "%s: %d images of %d classes%s%s",
            what,
            len(final),
            len(names),
            " (from the decode cache)" if decoded.from_cache else "",
            " (streaming: decoded per batch)" if streaming else "",
        )
        given = split if bool((split != FREE).any()) else None
        for name_, code in SPLIT_CODES.items():  # a given split must be usable on its own
            held = sorted({e.label for e in final if e.split == code})
            if given is not None and 0 < len(held) < 2:
                raise ValueError(
                    f"{what}: split {name_!r} is given {len(held)} class {held}; a split needs at "
                    "least 2 classes (give it more classes, or leave its rows' split empty)"
                )
        return ImageSet(images=images, labels=labels, class_names=names, split=given)


class ImageFolder(_Decoding):
    """`root/<class>/<image>`: class names are the folder names (sorted), images anywhere below
    their class folder (sorted by path). Hidden files and folders are skipped; other files that
    are not images are ignored and counted."""

    def __init__(
        self,
        root: str | Path,
        image_size: int = 32,
        channels: int = 3,
        resize: str = "stretch",
        num_workers: int | None = None,
        cache: bool = True,
        skip_bad: bool = False,
        max_memory_gb: float = 8.0,
    ):
        super().__init__(image_size, channels, resize, num_workers, cache, skip_bad, max_memory_gb)
        self.root = Path(root).expanduser()

    def __call__(self) -> ImageSet:
        root = self.root
        if not root.exists():
            raise FileNotFoundError(
                f"data.root={str(root)!r} does not exist; point it at a folder laid out as "
                "<root>/<class>/<image>"
            )
        if not root.is_dir():
            raise NotADirectoryError(
                f"data.root={str(root)!r} is a file, not a folder laid out as <root>/<class>/<image>"
            )
        classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        ignored = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
        entries: list[_Entry] = []
        for folder in classes:
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for f in sorted(filenames):
                    p = Path(dirpath) / f
                    if f.startswith("."):
                        continue
                    if p.suffix.lower() in IMAGE_SUFFIXES:
                        entries.append(_Entry(p, folder.name))
                    else:
                        ignored.append(p)
        if not entries:
            raise ValueError(
                f"data.root={str(root)!r} holds no images in class folders: expected "
                f"<root>/<class>/<image> with suffixes {', '.join(IMAGE_SUFFIXES)}"
            )
        entries.sort(key=lambda e: (e.label, str(e.path.relative_to(root / e.label))))
        if ignored:
            log.info(
                "ignored %d file(s) in %s that are not images in class folders, e.g. %s",
                len(ignored),
                root,
                ", ".join(str(p.relative_to(root)) for p in ignored[:3]),
            )
        labels = {e.label for e in entries}
        empty = [p.name for p in classes if p.name not in labels]
        if empty:
            log.warning("left out %d empty class folder(s) in %s: %s", len(empty), root, empty)
        data = self._build(entries, root, "folder", f"data.root={str(root)!r}")
        self.stats["ignored_files"] = len(ignored)
        self.stats["empty_classes"] = empty
        return data


class CSVManifest(_Decoding):
    """A CSV file with a header: `path,label` and an optional `split` (train/val/test; empty
    means drawn by data.split_by). Paths are relative to the manifest's folder (or absolute)."""

    def __init__(
        self,
        manifest: str | Path,
        image_size: int = 32,
        channels: int = 3,
        resize: str = "stretch",
        num_workers: int | None = None,
        cache: bool = True,
        skip_bad: bool = False,
        max_memory_gb: float = 8.0,
    ):
        super().__init__(image_size, channels, resize, num_workers, cache, skip_bad, max_memory_gb)
        self.manifest = Path(manifest).expanduser()

    def __call__(self) -> ImageSet:
        m = self.manifest
        if not m.is_file():
            raise FileNotFoundError(
                f"data.manifest={str(m)!r} does not exist or is not a file; it should be a CSV "
                "with a header line: path,label[,split]"
            )
        base = m.parent
        entries: list[_Entry] = []
        missing: list[str] = []
        with open(m, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            need = [c for c in ("path", "label") if c not in header]
            if need:
                raise ValueError(
                    f"{m}, line 1: the header {reader.fieldnames} lacks column(s) {need}; the "
                    "first line must name the columns: path,label[,split]"
                )
            reader.fieldnames = header
            for row in reader:
                where = f"{m.name}, line {reader.line_num}"
                path, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
                if not path and not label and not (row.get("split") or "").strip():
                    continue  # a blank line
                if not path or not label:
                    raise ValueError(f"{where}: empty path or label ({row})")
                split = (row.get("split") or "").strip().lower()
                if split and split not in SPLIT_CODES:
                    raise ValueError(
                        f"{where}: unknown split {split!r}; use one of {list(SPLIT_CODES)} "
                        "or leave it empty"
                    )
                p = Path(path).expanduser()
                p = p if p.is_absolute() else base / p
                if not p.is_file():
                    missing.append(f"{where}: {p}")
                    continue
                entries.append(_Entry(p, label, SPLIT_CODES.get(split, FREE), where))
        if missing:
            shown = "\n  ".join(missing[:10])
            more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise FileNotFoundError(
                f"{len(missing)} file(s) named in {m} do not exist (paths are relative to "
                f"{base}):\n  {shown}{more}"
            )
        if not entries:
            raise ValueError(f"data.manifest={str(m)!r} lists no images")
        return self._build(entries, base, m.stem, f"data.manifest={str(m)!r}")
