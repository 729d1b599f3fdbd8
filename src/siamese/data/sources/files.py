"""Image files decoded once into an `ImageSet`: what the folder, manifest and torchvision sources
share.

A source lists its files (`entries`) and is called with the decode settings of the data module
(`channels`, `image_size`, `resize`). Every image goes through `load_image` (the same path
`verify` and `search` use), the decoded tensor is cached on disk, and the set streams
(`LazyImages`) when decoded it would exceed `max_memory_gb`. Errors name the file, line or class
and say what to do.
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from siamese.core.errors import DataError, at_least, positive
from siamese.data.decode import Decoded, decode_cached
from siamese.data.imageset import FREE, SPLIT_CODES, ImageSet
from siamese.data.lazy import LazyImages

log = logging.getLogger(__name__)
SHOWN = 10  # bad files listed in an error; the rest are counted


def default_workers() -> int:
    return min(8, os.cpu_count() or 1)


@dataclass
class Entry:
    path: Path
    label: str
    split: int = FREE
    where: str = ""  # where errors point besides the file: "m.csv, line 12"
    roles: tuple[bool, bool] | None = None  # (is_query, is_gallery) where the source gives them


@dataclass
class Listing:
    """What a source found: its entries, the folder the cache goes beside, a name for the cache
    file and how errors call the data ("data.root='faces'")."""

    entries: list[Entry]
    base: Path
    name: str
    what: str
    stats: dict = field(default_factory=dict)  # what listing found, kept in the source's stats


class DecodedSource:
    """The decode-once steps shared by the file sources; a subclass lists its files (`listing`)."""

    def __init__(self, num_workers: int | None, cache: bool, skip_bad: bool, max_memory_gb: float):
        if num_workers is not None:
            at_least("num_workers", num_workers, 0)
        self.num_workers = default_workers() if num_workers is None else num_workers
        self.cache, self.skip_bad = cache, skip_bad
        self.max_memory_gb = positive("max_memory_gb", max_memory_gb)
        self.stats: dict = {}  # what the last call did: counts, cache use, streaming

    def listing(self) -> Listing:
        raise NotImplementedError

    def __call__(self, *, image_size: int, channels: int = 3, resize: str = "stretch") -> ImageSet:
        found = self.listing()
        streaming = len(found.entries) * channels * image_size**2 > self.max_memory_gb * 2**30
        files = [e.path for e in found.entries]
        decoded = decode_cached(
            files,
            found.base,
            found.name,
            channels,
            image_size,
            resize,
            self.num_workers,
            self.cache,
            keep=not streaming,
        )
        good = self._readable(found, decoded)
        final, names, small = _usable(found, good)
        if streaming:
            files = [e.path for e in final]
            images = LazyImages(files, channels, image_size, resize, self.num_workers)
        else:  # decoded holds the readable files only: keep those of usable classes
            usable = set(names)
            kept = [e.label in usable for e, g in zip(found.entries, good, strict=True) if g]
            images = decoded.images if all(kept) else decoded.images[torch.tensor(kept)]
        index = {n: i for i, n in enumerate(names)}
        labels = torch.tensor([index[e.label] for e in final], dtype=torch.int64)
        split = torch.tensor([e.split for e in final], dtype=torch.int64)
        given = split if bool((split != FREE).any()) else None
        if given is not None:
            _check_given_splits(final, found.what)
        roles = None
        if any(e.roles is not None for e in final):
            roles = torch.tensor([e.roles or (False, False) for e in final], dtype=torch.bool)
        self.stats = found.stats | {
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
            found.what,
            len(final),
            len(names),
            " (from the decode cache)" if decoded.from_cache else "",
            " (streaming: decoded per batch)" if streaming else "",
        )
        return ImageSet(images, labels, names, split=given, roles=roles)

    def _readable(self, found: Listing, decoded: Decoded) -> list[bool]:
        """Which entries decoded; unreadable ones stop the run unless skip_bad."""
        good = [True] * len(found.entries)
        if not decoded.bad:
            return good
        shown = "\n  ".join(
            f"{found.entries[i].where}: {m}" if found.entries[i].where else m
            for i, m in decoded.bad[:SHOWN]
        )
        more = len(decoded.bad) - SHOWN
        shown += f"\n  ... and {more} more" if more > 0 else ""
        if not self.skip_bad:
            raise DataError(
                f"{len(decoded.bad)} unreadable image(s) in {found.what}:\n  {shown}\n"
                "Replace or delete them, or set data.skip_bad=true to skip and count them."
            )
        log.warning(
            "skipped %d unreadable image(s) in %s:\n  %s", len(decoded.bad), found.what, shown
        )
        for i, _ in decoded.bad:
            good[i] = False
        return good


def _usable(found: Listing, good: list[bool]) -> tuple[list[Entry], list[str], list[str]]:
    """(the readable entries of classes with 2 or more of them, those class names sorted, the
    names of the classes left out): a class of one image gives no positive pair."""
    readable = [e for e, g in zip(found.entries, good, strict=True) if g]
    counts: dict[str, int] = {}
    for e in readable:
        counts[e.label] = counts.get(e.label, 0) + 1
    small = sorted(k for k, v in counts.items() if v < 2)
    if small:
        log.warning(
            "left out %d class(es) of %s with fewer than 2 images: %s",
            len(small),
            found.what,
            ", ".join(repr(k) for k in small),
        )
    names = sorted(k for k, v in counts.items() if v >= 2)
    if len(names) < 2:
        raise DataError(
            f"{found.what} has {len(names)} usable class(es) {names}; at least 2 classes with 2 or "
            "more readable images each are needed"
        )
    usable = set(names)
    return [e for e in readable if e.label in usable], names, small


def _check_given_splits(final: list[Entry], what: str) -> None:
    """A split given to some samples must be usable on its own: 2 classes at least."""
    for name, code in SPLIT_CODES.items():
        held = sorted({e.label for e in final if e.split == code})
        if 0 < len(held) < 2:
            raise DataError(
                f"{what}: split {name!r} is given {len(held)} class {held}; a split needs at "
                "least 2 classes (give it more classes, or leave its rows' split empty)"
            )
