"""Decode once: many image files to one uint8 tensor, in parallel, cached on disk.

The cache file is keyed by the file list (paths, sizes, modification times) and the decode options
(image_size, channels, resize), so a second run loads it instead of decoding, and adding, removing,
replacing or touching a file decodes again. It lives beside the data (`<folder>/.siamese-cache/`),
or under the cache folder (`$SIAMESE_CACHE`, default `~/.cache/siamese`) when the data folder is
read-only. Writes are atomic (temporary file in the same folder, then os.replace).
"""

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from siamese.core.atomic import atomic_torch_save
from siamese.data.images import ImageDecodeError, check_decode_options, load_image

log = logging.getLogger(__name__)
CACHE_VERSION = 1
CACHE_DIRNAME = ".siamese-cache"


def cache_root() -> Path:
    """Where downloads and caches of read-only data go: $SIAMESE_CACHE, else ~/.cache/siamese."""
    return Path(os.environ.get("SIAMESE_CACHE") or Path.home() / ".cache" / "siamese").expanduser()


@dataclass
class Decoded:
    images: Tensor | None  # (n_good, C, H, W) uint8, files in order with the bad ones left out
    bad: list[tuple[int, str]] = field(default_factory=list)  # (position in files, error)
    from_cache: bool = False
    cache_file: Path | None = None


def decode_files(
    files: Sequence[Path],
    channels: int,
    size: int,
    resize: str = "stretch",
    num_workers: int = 0,
    parallel: str = "threads",
    keep: bool = True,
    desc: str = "decoding images",
) -> Decoded:
    """Every file through `load_image`; unreadable ones are collected in `bad`, not raised.
    `num_workers` <= 1 decodes in this thread; `parallel` is "threads" (PIL decodes without the
    GIL) or "processes". `keep=False` only checks the files (streaming mode)."""
    check_decode_options(channels, size, resize)
    n = len(files)
    images = torch.empty(n if keep else 0, channels, size, size, dtype=torch.uint8)
    ok = torch.ones(n, dtype=torch.bool)
    bad: list[tuple[int, str]] = []
    chunk = 64
    starts = range(0, n, chunk)
    jobs = [([str(f) for f in files[s : s + chunk]], channels, size, resize, keep) for s in starts]
    bar = _progress(n, desc)
    if num_workers <= 1:
        results = map(_decode_chunk, jobs)
        pool = None
    else:
        if parallel not in ("threads", "processes"):
            raise ValueError(f"parallel must be 'threads' or 'processes', got {parallel!r}")
        executor = ThreadPoolExecutor if parallel == "threads" else ProcessPoolExecutor
        pool = executor(num_workers)
        results = pool.map(_decode_chunk, jobs)
    try:
        for start, (tensor, errors) in zip(starts, results, strict=True):
            if keep:
                images[start : start + tensor.shape[0]] = tensor
            for j, message in errors:
                ok[start + j] = False
                bad.append((start + j, message))
            bar.update(len(jobs[start // chunk][0]))
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return Decoded(images=images[ok] if keep and bad else (images if keep else None), bad=bad)


def _decode_chunk(job) -> tuple[Tensor, list[tuple[int, str]]]:
    paths, channels, size, resize, keep = job
    out = torch.zeros(len(paths) if keep else 0, channels, size, size, dtype=torch.uint8)
    errors = []
    for j, p in enumerate(paths):
        try:
            image = load_image(p, channels, size, resize)
        except ImageDecodeError as err:
            errors.append((j, str(err)))
            continue
        if keep:
            out[j] = image
    return out, errors


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    # disable=None: a bar on a terminal, silent in log files
    return tqdm(total=total, desc=desc, unit="img", disable=None, leave=False)


def cache_key(
    files: Sequence[Path], base: Path, channels: int, size: int, resize: str, keep: bool
) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([CACHE_VERSION, channels, size, resize, keep]).encode())
    for f in files:
        st = f.stat()
        rel = os.path.relpath(f, base)
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cache_folder(base: Path) -> Path:
    """`base/.siamese-cache` when writable, else a folder under cache_root() named for `base`."""
    own = base / CACHE_DIRNAME
    try:
        own.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=own):
            pass
        return own
    except OSError:
        name = hashlib.sha256(str(base.resolve()).encode()).hexdigest()[:16]
        other = cache_root() / "decoded" / name
        other.mkdir(parents=True, exist_ok=True)
        return other


def decode_cached(
    files: Sequence[Path],
    base: Path,
    name: str,
    channels: int,
    size: int,
    resize: str = "stretch",
    num_workers: int = 0,
    cache: bool = True,
    keep: bool = True,
    parallel: str = "threads",
) -> Decoded:
    """`decode_files`, loaded from or saved to the cache beside `base`. `name` tells apart the
    data sets that share a folder (a manifest's stem). Stale files of the same name and options
    are removed when a new one is written."""
    if not cache:
        return decode_files(files, channels, size, resize, num_workers, parallel, keep)
    key = cache_key(files, base, channels, size, resize, keep)
    folder = cache_folder(base)
    stem = f"{name}-{size}px-{channels}ch-{resize}-{'images' if keep else 'checked'}"
    target = folder / f"{stem}-{key[:20]}.pt"
    if target.is_file():
        try:
            saved = torch.load(target, map_location="cpu", weights_only=True)
            if saved.get("key") == key:
                bad = [(int(i), str(m)) for i, m in saved["bad"]]
                return Decoded(saved.get("images"), bad, from_cache=True, cache_file=target)
        except Exception as err:  # a damaged cache file is only a cache miss
            log.warning("ignoring unreadable cache file %s (%s); decoding again", target, err)
    decoded = decode_files(files, channels, size, resize, num_workers, parallel, keep)
    payload = {"key": key, "images": decoded.images, "bad": decoded.bad}
    try:
        atomic_torch_save(payload, target)
        for stale in folder.glob(f"{stem}-*.pt"):
            if stale != target:
                stale.unlink(missing_ok=True)
        decoded.cache_file = target
    except OSError as err:  # a full disk costs the next run a decode, not this run
        log.warning("could not write the decode cache %s (%s)", target, err)
    return decoded
