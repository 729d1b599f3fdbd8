"""A folder of class folders: `root/<class>/<image>`, decoded once into an `ImageSet`."""

import logging
import os
from pathlib import Path

from siamese.core.errors import ArgumentError, DataError
from siamese.data.images import IMAGE_SUFFIXES
from siamese.data.sources.files import DecodedSource, Entry, Listing

log = logging.getLogger(__name__)


class ImageFolder(DecodedSource):
    """`root/<class>/<image>`: class names are the folder names (sorted), images anywhere below
    their class folder (sorted by path). Hidden files and folders are skipped; other files that
    are not images are ignored and counted."""

    def __init__(
        self,
        root: str | Path,
        num_workers: int | None = None,
        cache: bool = True,
        skip_bad: bool = False,
        max_memory_gb: float = 8.0,
    ):
        super().__init__(num_workers, cache, skip_bad, max_memory_gb)
        self.root = Path(root).expanduser()
        layout = "a folder laid out as <root>/<class>/<image>"
        if not self.root.exists():
            raise ArgumentError("root", f"={str(self.root)!r} does not exist; point it at {layout}")
        if not self.root.is_dir():
            raise ArgumentError("root", f"={str(self.root)!r} is a file, not {layout}")

    def listing(self) -> Listing:
        root = self.root
        classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        ignored = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
        entries: list[Entry] = []
        for folder in classes:
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for f in sorted(filenames):
                    p = Path(dirpath) / f
                    if f.startswith("."):
                        continue
                    if p.suffix.lower() in IMAGE_SUFFIXES:
                        entries.append(Entry(p, folder.name))
                    else:
                        ignored.append(p)
        if not entries:
            raise DataError(
                f"folder {str(root)!r} holds no images in class folders: expected "
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
        stats = {"ignored_files": len(ignored), "empty_classes": empty}
        return Listing(entries, root, "folder", f"folder {str(root)!r}", stats)
