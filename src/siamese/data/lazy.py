"""Streaming mode: a stand-in for the (N, C, H, W) uint8 image tensor that decodes on indexing.

`LazyImages[key]` accepts what a tensor's first dimension does (an index tensor of any shape, an
int, a slice, `(slice, None)`) and returns exactly what the in-memory tensor would, because both
are made by `load_image` with the same options. It holds only file names and options, so it
pickles cheaply into DataLoader worker processes, where the files of each batch are decoded.
"""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

from siamese.data.images import check_decode_options, load_image


class LazyImages:
    dtype = torch.uint8
    device = torch.device("cpu")

    def __init__(
        self,
        files: Sequence[str | Path],
        channels: int,
        size: int,
        resize: str = "stretch",
        threads: int = 1,
    ):
        check_decode_options(channels, size, resize)
        self.files = [str(f) for f in files]
        self.channels, self.size, self.resize = channels, size, resize
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.files), self.channels, self.size, self.size))

    def dim(self) -> int:
        return 4

    def __getitem__(self, key) -> Tensor:
        # the positions `key` selects, in the shape the same key gives on a tensor's first dim
        pos = torch.arange(len(self.files))[key]
        unique, inverse = torch.unique(pos, return_inverse=True)  # decode repeats once
        decoded = self._decode(unique.tolist())
        return decoded[inverse]

    def subset(self, index: Tensor) -> "LazyImages":
        """The files at `index`, still undecoded."""
        positions = torch.arange(len(self.files))[index].flatten().tolist()  # masks work too
        files = [self.files[i] for i in positions]
        return LazyImages(files, self.channels, self.size, self.resize, self.threads)

    def materialize(self) -> Tensor:
        """All images decoded into one tensor."""
        return self._decode(list(range(len(self.files))))

    def _decode(self, positions: list[int]) -> Tensor:
        out = torch.empty(len(positions), self.channels, self.size, self.size, dtype=torch.uint8)

        def one(j: int) -> None:
            out[j] = load_image(self.files[positions[j]], self.channels, self.size, self.resize)

        if self.threads > 1 and len(positions) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads)
            list(self._pool.map(one, range(len(positions))))
        else:
            for j in range(len(positions)):
                one(j)
        return out

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_pool"] = None  # a pool cannot cross a process boundary; each worker makes its own
        return state

    def __repr__(self) -> str:
        return (
            f"LazyImages({len(self.files)} files, {tuple(self.shape[1:])}, resize={self.resize!r})"
        )
