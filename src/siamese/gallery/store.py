"""The index file: a gallery's embeddings, its file list and the model that embedded it.

One file (`photos.idx`), written atomically with `torch.save` and read with
`torch.load(weights_only=True, mmap=True)`: tensors, strings and numbers only, nothing a load
could execute, and the embeddings memory-mapped rather than read whole. It holds

- the gallery folder and its images as paths relative to it, with their sizes and modification
  times (what `update` compares), in sorted order: row i of the embeddings is file i;
- the embeddings (N, D), float32 or float16 (`dtype`);
- the files that could not be decoded, with their sizes, times and errors (retried once changed);
- the model's fingerprint: its file and SHA-256, image size, channels, resize, distance and
  embedding size: an index is searched or updated only with the model that built it;
- optionally a FAISS index of the same embeddings (`siamese.gallery.approximate`) and its
  recall@k against exact search.
"""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from siamese.core.atomic import atomic_torch_save
from siamese.inference import Model, meta_path

FORMAT = "siamese-index"
VERSION = 1
DTYPES = {"float32": torch.float32, "float16": torch.float16}


class ModelMismatch(ValueError):
    """A model that is not the one an index was built with."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(model: Model) -> dict:
    """What decides an embedding: the model file (and an export's JSON beside it) by content,
    how images are decoded for it, and how its embeddings are compared."""
    digest = file_sha256(model.path)
    meta = meta_path(model.path)
    if meta.is_file():
        digest = hashlib.sha256((digest + file_sha256(meta)).encode()).hexdigest()
    return {
        "path": str(Path(model.path).resolve()),
        "sha256": digest,
        "image_size": model.image_size,
        "channels": model.channels,
        "resize": model.resize,
        "distance": model.distance,
        "embedding_dim": model.embedding_dim,
    }


@dataclass
class Skipped:
    file: str  # relative to the gallery folder
    size: int
    mtime_ns: int
    error: str


@dataclass
class GalleryIndex:
    root: Path  # the gallery folder, absolute
    files: list[str]  # relative to root, sorted; row i of `embeddings` is files[i]
    sizes: Tensor  # (N,) int64 bytes
    mtimes: Tensor  # (N,) int64 ns
    embeddings: Tensor  # (N, D) float32 or float16
    model: dict  # `fingerprint` of the model that embedded them
    skipped: list[Skipped] = field(default_factory=list)
    # how it was built, re-applied by `update`: dtype, approximate, target_recall
    settings: dict = field(default_factory=dict)
    approximate: dict | None = None  # `siamese.gallery.approximate.Approximate.state()`

    def __len__(self) -> int:
        return len(self.files)

    @property
    def distance(self) -> str:
        return self.model["distance"]

    def path_of(self, i: int) -> Path:
        return self.root / self.files[i]

    def check_model(self, model: Model, index_path: str | Path) -> None:
        """Refuse a model other than the index's own (by content and decoding), naming both."""
        mine, theirs = self.model, fingerprint(model)
        differ = [k for k in mine if k != "path" and mine[k] != theirs[k]]
        if differ:
            shown = ", ".join(f"{k} {mine[k]!r} vs {theirs[k]!r}" for k in differ)
            raise ModelMismatch(
                f"index {index_path} was built with model {mine['path']} (sha256 "
                f"{mine['sha256'][:12]}), not with {theirs['path']} (sha256 "
                f"{theirs['sha256'][:12]}): they differ in {shown}. Build a new index with this "
                "model (python -m siamese.index build ...), or search with the index's own"
            )

    def save(self, path: str | Path) -> None:
        state = {
            "format": FORMAT,
            "version": VERSION,
            "root": str(self.root),
            "files": list(self.files),
            "sizes": self.sizes.long(),
            "mtimes": self.mtimes.long(),
            "embeddings": self.embeddings.contiguous(),
            "model": dict(self.model),
            "skipped": [[s.file, s.size, s.mtime_ns, s.error] for s in self.skipped],
            "settings": dict(self.settings),
            "approximate": self.approximate,
        }
        atomic_torch_save(state, path)


def load_index(path: str | Path) -> GalleryIndex:
    """An index file as written by `GalleryIndex.save`; errors name the file and say what to do."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"index {path} is a directory, not an index file")
    if not path.is_file():
        raise FileNotFoundError(
            f"index {path} does not exist: build it with "
            "python -m siamese.index build model=FILE gallery=DIR index=FILE"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # not a zip, truncated, or holding something unsafe to unpickle
        raise ValueError(f"{path} is not a siamese index file: {err}") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a siamese index file (no {FORMAT!r} format mark)")
    if state.get("version") != VERSION:
        raise ValueError(
            f"{path} is an index of format version {state.get('version')}, this siamese reads "
            f"version {VERSION}: build it again"
        )
    return GalleryIndex(
        root=Path(state["root"]),
        files=list(state["files"]),
        sizes=state["sizes"],
        mtimes=state["mtimes"],
        embeddings=state["embeddings"],
        model=dict(state["model"]),
        skipped=[Skipped(f, int(s), int(t), e) for f, s, t, e in state["skipped"]],
        settings=dict(state["settings"]),
        approximate=state["approximate"],
    )
