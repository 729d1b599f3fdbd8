"""Train/val/test splits: by class (open set, the default) or by sample within every class."""

import torch
from torch import Tensor

SPLITS = ("train", "val", "test")


def split_indices(
    labels: Tensor, fractions: dict[str, float], by: str, seed: int
) -> dict[str, Tensor]:
    """Index tensors per split. `by="classes"`: disjoint class sets, so test classes are never seen
    in training; `by="samples"`: every class in every split, its samples divided."""
    total = sum(fractions[s] for s in SPLITS)
    if any(fractions[s] <= 0 for s in SPLITS) or abs(total - 1.0) > 1e-6:
        raise ValueError(f"data.split fractions must be > 0 and sum to 1, got {dict(fractions)}")
    g = torch.Generator().manual_seed(seed)
    if by == "classes":
        classes = torch.unique(labels)
        counts = _allocate(classes.numel(), fractions, minimum=2, what="classes")
        parts = torch.split(classes[torch.randperm(classes.numel(), generator=g)], counts)
        return {
            s: torch.nonzero(torch.isin(labels, p)).flatten()
            for s, p in zip(SPLITS, parts, strict=True)
        }
    if by == "samples":
        out: dict[str, list[Tensor]] = {s: [] for s in SPLITS}
        for c in torch.unique(labels).tolist():  # once per class at set-up, not per batch
            members = torch.nonzero(labels == c).flatten()
            members = members[torch.randperm(members.numel(), generator=g)]
            counts = _allocate(members.numel(), fractions, minimum=2, what=f"samples of class {c}")
            for s, part in zip(SPLITS, torch.split(members, counts), strict=True):
                out[s].append(part)
        return {s: torch.cat(v).sort().values for s, v in out.items()}
    raise ValueError(f"data.split_by must be 'classes' or 'samples', got {by!r}")


def _allocate(n: int, fractions: dict[str, float], minimum: int, what: str) -> list[int]:
    counts = [max(minimum, round(n * fractions[s])) for s in SPLITS[1:]]
    counts.insert(0, n - sum(counts))
    if counts[0] < minimum:
        raise ValueError(
            f"data.split {dict(fractions)} leaves {counts} {what} for train/val/test; each split "
            f"needs at least {minimum}, and there are only {n}"
        )
    return counts
