"""A folder of class folders: `root/<class>/<image>`, or `root/<group>/<class>/<image>` with
`class_depth=2` (Omniglot's alphabet/character), decoded once into an `ImageSet`."""

import logging
import os
from pathlib import Path

from siamese.core.errors import ArgumentError, DataError, at_least
from siamese.data.images import IMAGE_SUFFIXES, suffixes_named
from siamese.data.sources.files import DecodedSource, Entry, Listing

log = logging.getLogger(__name__)


class ImageFolder(DecodedSource):
    """`root/<class>/<image>`: the classes are the folders `class_depth` levels below root, named
    by their path below it joined with "/" ("Latin/character01"), sorted; images anywhere below
    their class folder (sorted by path). Hidden files and folders are skipped; other files that
    are not images, and files above the class folders, are ignored and counted."""

    def __init__(
        self,
        root: str | Path,
        class_depth: int = 1,
        num_workers: int | None = None,
        cache: bool = True,
        skip_bad: bool = False,
        max_memory_gb: float = 8.0,
    ):
        super().__init__(num_workers, cache, skip_bad, max_memory_gb)
        self.root = Path(root).expanduser()
        self.class_depth = at_least("class_depth", class_depth, 1)
        layout = "a folder laid out as <root>/<class>/<image>"
        if not self.root.exists():
            raise ArgumentError("root", f"={str(self.root)!r} does not exist; point it at {layout}")
        if not self.root.is_dir():
            raise ArgumentError("root", f"={str(self.root)!r} is a file, not {layout}")

    def listing(self) -> Listing:
        root = self.root
        classes, ignored = self._class_folders()
        entries: list[Entry] = []
        direct = set()  # classes with images right in their folder, not only in subfolders
        for folder in classes:
            name = folder.relative_to(root).as_posix()
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for f in sorted(f for f in filenames if not f.startswith(".")):
                    p = Path(dirpath) / f
                    if p.suffix.lower() in IMAGE_SUFFIXES:
                        entries.append(Entry(p, name))
                        if p.parent == folder:
                            direct.add(name)
                    else:
                        ignored.append(p)
        if not entries:
            raise DataError(
                f"folder {str(root)!r} holds no images in class folders: expected "
                f"{self._layout()} with {suffixes_named()}"
                + (f"; found only {_examples(ignored, root)}" if ignored else "")
            )
        entries.sort(key=lambda e: (e.label, str(e.path.relative_to(root / e.label))))
        if ignored:
            log.info(
                "ignored %d file(s) in %s that are not images in class folders, e.g. %s",
                len(ignored),
                root,
                _examples(ignored, root),
            )
        if not direct:
            log.warning(
                "every class folder of %s holds its images in subfolders only (e.g. %s): if "
                "those subfolders are the classes, set data.class_depth=%d",
                root,
                entries[0].path.parent.relative_to(root).as_posix(),
                self.class_depth + 1,
            )
        labels = {e.label for e in entries}
        names = [p.relative_to(root).as_posix() for p in classes]
        empty = [n for n in names if n not in labels]
        if empty:
            log.warning("left out %d empty class folder(s) in %s: %s", len(empty), root, empty)
        stats = {"ignored_files": len(ignored), "empty_classes": empty}
        return Listing(entries, root, "folder", f"folder {str(root)!r}", stats)

    def _class_folders(self) -> tuple[list[Path], list[Path]]:
        """(the folders `class_depth` levels below root, sorted; the files above them). A folder
        above that level holding images and no folder is a tree shallower than the depth: an
        error naming it."""
        level, above = [self.root], []
        for depth in range(self.class_depth):
            below = []
            for folder in level:
                visible = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
                files = [p for p in visible if p.is_file()]
                subfolders = [p for p in visible if p.is_dir()]
                images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
                if images and not subfolders:
                    raise DataError(self._too_shallow(folder, depth, images[0]))
                above += files
                below += subfolders
            level = below
        return level, above

    def _too_shallow(self, folder: Path, depth: int, image: Path) -> str:
        where = f"{str(folder)!r} holds images ({image.name}, ...) and no class folders"
        if depth == 0:
            return f"{where}: expected {self._layout()}; put each class's images in a folder"
        return (
            f"{where}, but data.class_depth={self.class_depth} expects {self._layout()}: "
            f"the classes of this tree are {depth} level(s) down, set data.class_depth={depth}"
        )

    def _layout(self) -> str:
        groups = "".join(f"<level{i}>/" for i in range(1, self.class_depth))
        return f"<root>/{groups}<class>/<image>"


def _examples(files: list[Path], root: Path, shown: int = 3) -> str:
    return ", ".join(str(p.relative_to(root)) for p in files[:shown])
