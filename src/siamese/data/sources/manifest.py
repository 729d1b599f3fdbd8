"""A CSV manifest: `path,label[,split]` lines, decoded once into an `ImageSet`."""

import csv
from pathlib import Path

from siamese.core.errors import ArgumentError, DataError, MissingFileError
from siamese.data.imageset import FREE, SPLIT_CODES
from siamese.data.sources.files import DecodedSource, Entry, Listing


class CSVManifest(DecodedSource):
    """A CSV file with a header: `path,label` and an optional `split` (train/val/test; empty
    means drawn by data.split_by). Paths are relative to the manifest's folder (or absolute)."""

    def __init__(
        self,
        manifest: str | Path,
        num_workers: int | None = None,
        cache: bool = True,
        skip_bad: bool = False,
        max_memory_gb: float = 8.0,
    ):
        super().__init__(num_workers, cache, skip_bad, max_memory_gb)
        self.manifest = Path(manifest).expanduser()
        if not self.manifest.is_file():
            raise ArgumentError(
                "manifest",
                f"={str(self.manifest)!r} does not exist or is not a file; it should be a CSV "
                "with a header line: path,label[,split]",
            )

    def listing(self) -> Listing:
        m = self.manifest
        base = m.parent
        entries: list[Entry] = []
        missing: list[str] = []
        with open(m, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            need = [c for c in ("path", "label") if c not in header]
            if need:
                raise DataError(
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
                    raise DataError(f"{where}: empty path or label ({row})")
                split = (row.get("split") or "").strip().lower()
                if split and split not in SPLIT_CODES:
                    raise DataError(
                        f"{where}: unknown split {split!r}; use one of {list(SPLIT_CODES)} "
                        "or leave it empty"
                    )
                p = Path(path).expanduser()
                p = p if p.is_absolute() else base / p
                if not p.is_file():
                    missing.append(f"{where}: {p}")
                    continue
                entries.append(Entry(p, label, SPLIT_CODES.get(split, FREE), where))
        if missing:
            shown = "\n  ".join(missing[:10])
            more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise MissingFileError(
                f"{len(missing)} file(s) named in {m} do not exist (paths are relative to "
                f"{base}):\n  {shown}{more}"
            )
        if not entries:
            raise DataError(f"manifest {str(m)!r} lists no images")
        return Listing(entries, base, m.stem, f"manifest {str(m)!r}")
