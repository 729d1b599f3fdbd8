"""Many image files to embeddings: decoded in chunks by the training decoder (`decode_files`:
worker threads or processes), each chunk embedded in batches while the next one decodes, with a
progress bar. Unreadable files are skipped and returned with their errors, never raised."""

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

from siamese.core.errors import at_least
from siamese.data.decode import decode_files
from siamese.data.sources.files import default_workers
from siamese.inference import Model

log = logging.getLogger(__name__)
SHOWN = 10  # skipped files named in the log; the rest are counted


def embed_files(
    model: Model,
    files: Sequence[Path],
    batch_size: int = 256,
    num_workers: int | None = None,
    chunk_size: int = 2048,
    desc: str = "embedding",
) -> tuple[Tensor, list[tuple[int, str]]]:
    """(embeddings (n_readable, D) float32 in the files' order, [(position, error)] of the
    files that could not be decoded). `num_workers` decoding threads (None: up to 8, one per
    core); `chunk_size` files are decoded at a time (memory: chunk_size decoded images, twice)."""
    at_least("batch_size", batch_size, 1)
    at_least("chunk_size", chunk_size, 1)
    workers = default_workers() if num_workers is None else at_least("num_workers", num_workers, 0)
    starts = range(0, len(files), chunk_size)
    bar = _bar(len(files), desc)

    def decode(start: int):
        return decode_files(
            files[start : start + chunk_size],
            model.channels,
            model.image_size,
            model.resize,
            workers,
            desc="decoding",
        )

    parts, bad = [], []
    # one thread decodes the next chunk (its own workers in parallel) while this one embeds
    with ThreadPoolExecutor(1) as ahead:
        pending = ahead.submit(decode, starts[0]) if starts else None
        for start in starts:
            decoded = pending.result()
            nxt = start + chunk_size
            pending = ahead.submit(decode, nxt) if nxt < len(files) else None
            bad += [(start + i, message) for i, message in decoded.bad]
            images = decoded.images
            for s in range(0, images.shape[0], batch_size):
                parts.append(model.embed(images[s : s + batch_size]))
            bar.update(min(chunk_size, len(files) - start))
    bar.close()
    if bad:
        shown = "\n  ".join(message for _, message in bad[:SHOWN])
        more = f"\n  ... and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
        log.warning("skipped %d unreadable image(s):\n  %s%s", len(bad), shown, more)
    dim = model.embedding_dim or 0
    return (torch.cat(parts) if parts else torch.empty(0, dim)), bad


def _bar(total: int, desc: str):
    from tqdm.auto import tqdm

    # disable=None: a bar on a terminal, silent in log files
    return tqdm(total=total, desc=desc, unit="img", disable=None)
