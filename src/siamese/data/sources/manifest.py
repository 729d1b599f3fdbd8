"""A CSV manifest: `path,label[,split][,is_query,is_gallery]` lines, decoded once into an
`ImageSet`."""

import csv
from pathlib import Path

from siamese.core.errors import ArgumentError, DataError, MissingFileError
from siamese.data.imageset import FREE, SPLIT_CODES
from siamese.data.sources.files import DecodedSource, Entry, Listing

ROLES = ("is_query", "is_gallery")  # OML's columns: the test split scored as query vs gallery
TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no", "")


class CSVManifest(DecodedSource):
    """A CSV file with a header: `path,label` and an optional `split` (train/val/test; empty
    means drawn by data.split_by). Paths are relative to the manifest's folder (or absolute).
    `is_query` and `is_gallery` (both or neither; 1/0, true/false, yes/no or empty) mark rows of
    split `test` as queries, gallery samples or both: the test split is then also scored as its
    queries against its gallery (CMC@k, mAP)."""

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
            has_roles = _role_columns(header, m)
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
                roles = _roles(row, split, where) if has_roles else None
                entries.append(Entry(p, label, SPLIT_CODES.get(split, FREE), where, roles))
        if missing:
            shown = "\n  ".join(missing[:10])
            more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise MissingFileError(
                f"{len(missing)} file(s) named in {m} do not exist (paths are relative to "
                f"{base}):\n  {shown}{more}"
            )
        if not entries:
            raise DataError(f"manifest {str(m)!r} lists no images")
        if has_roles:
            _check_roles(entries, m)
        return Listing(entries, base, m.stem, f"manifest {str(m)!r}")


def _role_columns(header: list[str], manifest: Path) -> bool:
    given = [c for c in ROLES if c in header]
    if len(given) == 1:
        missing = next(c for c in ROLES if c not in given)
        raise DataError(
            f"{manifest}, line 1: the header has {given[0]} but not {missing}; give both "
            "columns (query/gallery evaluation of the test split) or neither"
        )
    return bool(given)


def _roles(row: dict, split: str, where: str) -> tuple[bool, bool]:
    values = []
    for column in ROLES:
        value = (row.get(column) or "").strip().lower()
        if value not in TRUE + FALSE:
            raise DataError(
                f"{where}: {column} is {value!r}; use 1/0, true/false, yes/no or leave it empty"
            )
        values.append(value in TRUE)
    if any(values) and split != "test":
        raise DataError(
            f"{where}: is_query/is_gallery mark samples of the test split, this row's split is "
            f"{split or 'empty'!r}: give it split test, or leave its roles empty"
        )
    return values[0], values[1]


def _check_roles(entries: list[Entry], manifest: Path) -> None:
    """Some query must find a gallery sample of its class (another row), or CMC and mAP are
    undefined: stop before any decoding."""
    gallery: dict[str, int] = {}
    for e in entries:
        gallery[e.label] = gallery.get(e.label, 0) + e.roles[1]
    if not any(e.roles[0] and gallery.get(e.label, 0) > e.roles[1] for e in entries):
        raise DataError(
            f"{manifest}: no is_query row has an is_gallery row of its label (another row): "
            "mark the test split's queries and gallery with 1 in those columns"
        )
