"""Torchvision data sets as an `ImageSet`: MNIST, FashionMNIST, KMNIST, CIFAR10, CIFAR100, SVHN and
Omniglot, stored under `root` (default: the cache folder, `$SIAMESE_CACHE` or ~/.cache/siamese).

The files torchvision expects are checked before anything else, so a missing data set fails in
milliseconds with the paths; a download runs under a short socket timeout, and whatever it wrote
is removed when it fails, so no half-written file breaks the next run.
"""

import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from siamese.core.errors import MissingFileError, UserError, one_of
from siamese.data.decode import cache_root
from siamese.data.images import convert_image
from siamese.data.imageset import FREE, SPLIT_CODES, ImageSet
from siamese.data.sources.files import DecodedSource, Listing
from siamese.data.sources.omniglot import (
    EVALUATION,
    FOLDER,
    REPOSITORY,
    SMALL_SETS,
    fetch_small_sets,
    omniglot_entries,
)

log = logging.getLogger(__name__)


class DownloadError(UserError, RuntimeError):
    """The download failed or left broken files; the message lists the files expected where."""


_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_IDX += ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
EXPECTED: dict[str, list[str]] = {
    "MNIST": [f"MNIST/raw/{f}" for f in _IDX],
    "FashionMNIST": [f"FashionMNIST/raw/{f}" for f in _IDX],
    "KMNIST": [f"KMNIST/raw/{f}" for f in _IDX],
    "CIFAR10": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
    + ["cifar-10-batches-py/test_batch", "cifar-10-batches-py/batches.meta"],
    "CIFAR100": [f"cifar-100-python/{f}" for f in ("train", "test", "meta")],
    "SVHN": ["train_32x32.mat", "test_32x32.mat"],
    "Omniglot": [f"{FOLDER}/images_background/", f"{FOLDER}/{EVALUATION}/"],
    "OmniglotSmall": [*(f"{FOLDER}/{s}/" for s in SMALL_SETS), f"{FOLDER}/{EVALUATION}/"],
}
OMNIGLOT = ("Omniglot", "OmniglotSmall")
TORCHVISION_NAMES = tuple(EXPECTED)


class TorchvisionDataset(DecodedSource):
    """`official_split`: the data set's own test set becomes the test split (a given split) and
    its training set is divided into train/val by data.split_by. None means: True for Omniglot
    (background set for train/val, evaluation set for test: the one-shot protocol), False for the
    others (train and test sets pooled, then split as usual, by classes or samples).
    `OmniglotSmall` is Omniglot with the two background-small sets (10 alphabets, 8 distinct)
    in place of the whole background set (30 alphabets)."""

    def __init__(
        self,
        name: str,
        root: str | Path | None = None,
        download: bool = True,
        official_split: bool | None = None,
        num_workers: int | None = None,
        cache: bool = True,
        max_memory_gb: float = 8.0,
        timeout_s: float = 10.0,
    ):
        super().__init__(num_workers, cache, False, max_memory_gb)
        self.name = one_of("name", name, TORCHVISION_NAMES)
        self.root = Path(root).expanduser() if root else cache_root()
        self.download = download
        self.official_split = name in OMNIGLOT if official_split is None else official_split
        self.timeout_s = timeout_s

    def missing(self) -> list[Path]:
        return [self.root / f for f in EXPECTED[self.name] if not (self.root / f).exists()]

    def __call__(self, *, image_size: int, channels: int = 3, resize: str = "stretch") -> ImageSet:
        missing = self.missing()
        if missing and not self.download:
            raise MissingFileError(self._missing_message(missing, "data.download=false"))
        if missing:
            self._fetch()
        if self.name in OMNIGLOT:  # image files: decoded and cached like a folder
            return super().__call__(channels=channels, image_size=image_size, resize=resize)
        return self._arrays(channels, image_size, resize)

    def _missing_message(self, missing: list[Path], why: str) -> str:
        listed = "\n  ".join(str(p) for p in missing)
        how = f"torchvision.datasets.{self.name}(root={str(self.root)!r}, download=True)"
        if self.name == "OmniglotSmall":
            how = (
                f"unzip {', '.join(f'{REPOSITORY}/{s}.zip' for s in SMALL_SETS)} into "
                f"{self.root / FOLDER}, and torchvision.datasets.Omniglot(root="
                f"{str(self.root)!r}, background=False, download=True) for the evaluation set"
            )
        return (
            f"{self.name} is not in {self.root} ({why}); expected:\n  {listed}\n"
            f"Run with data.download=true where the network is reachable, or copy the files "
            f"there (e.g. {how} on another machine). data.root or $SIAMESE_CACHE moves the folder."
        )

    def _fetch(self) -> None:
        import torchvision.datasets as tvd

        self.root.mkdir(parents=True, exist_ok=True)
        before = _tree(self.root)
        cls = getattr(tvd, "Omniglot" if self.name in OMNIGLOT else self.name)
        try:
            preflight(_first_url(cls), self.timeout_s)
        except OSError as err:
            raise DownloadError(
                self._missing_message(self.missing(), f"the download failed: {err}")
            ) from err
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(self.timeout_s)  # a stalled transfer fails in seconds
        try:
            if self.name == "OmniglotSmall":  # the repository's small archives, then the rest
                fetch_small_sets(self.root, self.timeout_s)
                cls(str(self.root), background=False, download=True)
            elif self.name == "Omniglot":
                for background in (True, False):
                    cls(str(self.root), background=background, download=True)
            elif self.name == "SVHN":
                for split in ("train", "test"):
                    cls(str(self.root), split=split, download=True)
            else:
                for train in (True, False):
                    cls(str(self.root), train=train, download=True)
        except Exception as err:
            _remove_new(self.root, before)
            raise DownloadError(
                self._missing_message(self.missing(), f"the download failed: {err}")
                + "\nNothing half-written was left behind."
            ) from err
        finally:
            socket.setdefaulttimeout(previous)

    def _arrays(self, channels: int, size: int, resize: str) -> ImageSet:
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.name)
        parts = []
        for official in ("train", "test"):
            try:
                if self.name == "SVHN":
                    ds = cls(str(self.root), split=official, download=False)
                else:
                    ds = cls(str(self.root), train=official == "train", download=False)
            except RuntimeError as err:  # present but failing torchvision's checksum
                raise DownloadError(
                    f"{self.name} files in {self.root} are incomplete or corrupted ({err}); "
                    f"delete {', '.join(EXPECTED[self.name])} there and download again"
                ) from err
            parts.append((official, *_array_and_labels(self.name, ds)))
        names = _class_names(self.name, ds)
        images = torch.cat([self._convert(a, channels, size, resize) for _, a, _ in parts])
        labels = torch.cat([y for _, _, y in parts])
        split = torch.cat(
            [
                torch.full((y.numel(),), SPLIT_CODES["test"] if o == "test" else FREE)
                for o, _, y in parts
            ]
        )
        given = split if self.official_split else None
        return ImageSet(images=images, labels=labels, class_names=names, split=given)

    def _convert(self, array: np.ndarray, channels: int, size: int, resize: str) -> Tensor:
        """(N, H, W) or (N, H, W, 3) uint8 through `convert_image`, unless it is a no-op."""
        from PIL import Image

        n, h, w = array.shape[:3]
        c = 1 if array.ndim == 3 else array.shape[3]
        if (h, w, c) == (size, size, channels):
            t = torch.from_numpy(np.ascontiguousarray(array)).view(n, h, w, c)
            return t.permute(0, 3, 1, 2).contiguous()
        out = torch.empty(n, channels, size, size, dtype=torch.uint8)

        def one(i: int) -> None:
            out[i] = convert_image(Image.fromarray(array[i]), channels, size, resize)

        with ThreadPoolExecutor(max(1, self.num_workers)) as pool:
            list(pool.map(one, range(n)))
        return out

    def listing(self) -> Listing:
        """Omniglot's files: the background set(s) (train/val) and the evaluation set (test)."""
        base = self.root / FOLDER
        entries = omniglot_entries(base, self.name, self.official_split)
        if not entries:
            raise MissingFileError(self._missing_message(self.missing(), "no PNG files found"))
        return Listing(entries, base, self.name.lower(), f"{self.name} in {base}")


def _array_and_labels(name: str, ds) -> tuple[np.ndarray, Tensor]:
    if name == "SVHN":  # (N, 3, H, W) and .labels
        return np.transpose(ds.data, (0, 2, 3, 1)), torch.as_tensor(ds.labels, dtype=torch.int64)
    data = ds.data.numpy() if isinstance(ds.data, Tensor) else np.asarray(ds.data)
    return data, torch.as_tensor(ds.targets, dtype=torch.int64)


def _class_names(name: str, ds) -> list[str]:
    if name == "SVHN":
        return [str(i) for i in range(10)]
    return list(ds.classes)


def _first_url(cls) -> str:
    if getattr(cls, "mirrors", None):
        return cls.mirrors[0]
    if getattr(cls, "url", None):
        return cls.url
    if getattr(cls, "split_list", None):
        return cls.split_list["train"][0]
    return cls.download_url_prefix


def preflight(url: str, timeout_s: float) -> None:
    """One connection to the download host, so offline fails in seconds rather than after a
    timeout per file and mirror."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as err:
        raise OSError(f"cannot reach {parts.hostname}:{port} ({err})") from err


def _tree(root: Path) -> set[str]:
    return {os.path.join(d, f) for d, dirs, files in os.walk(root) for f in files + dirs}


def _remove_new(root: Path, before: set[str]) -> None:
    """Delete what a failed download created (deepest first), leaving what was there."""
    import shutil

    for path in sorted(_tree(root) - before, key=len, reverse=True):
        p = Path(path)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
