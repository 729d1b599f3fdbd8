"""Image files decoded once into an `ImageSet`: what the folder, manifest and torchvision sources share.

Each source is a callable (the data module calls `source()`), decode every image with `load_image`
(the same path `verify` and `search` use), cache the decoded tensor on disk, and switch to
streaming (`LazyImages`) when the decoded set would exceed `max_memory_gb`. Every error names the
file, line or class and says what to do.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from siamese.data.decode import decode_cached
from siamese.data.images import check_decode_options
from siamese.data.imageset import FREE, SPLIT_CODES, ImageSet
from siamese.data.lazy import LazyImages

log = logging.getLogger(__name__)


def default_workers() -> int:
    return min(8, os.cpu_count() or 1)


@dataclass
class Entry:
    path: Path
    label: str
    split: int = FREE
    where: str = ""  # where errors point besides the file: "m.csv, line 12"


class DecodedSource:
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

    def _build(self, entries: list[Entry], base: Path, name: str, what: str) -> ImageSet:
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
