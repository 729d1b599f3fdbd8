"""Train/val/test splits: by class (open set, the default) or by sample within every class, or as
given per sample (a manifest's `split` column, Omniglot's evaluation set)."""

import torch
from torch import Tensor

from siamese.core.errors import ArgumentError, DataError, at_least, one_of

SPLITS = ("train", "val", "test")
SPLIT_BY = ("classes", "samples")


def check_split_options(fractions: dict[str, float], by: str, folds: int | None, fold: int) -> None:
    """The split settings alone, before any data: ArgumentError naming the argument."""
    one_of("split_by", by, SPLIT_BY)
    if set(fractions) != set(SPLITS):
        raise ArgumentError("split", f"must give {list(SPLITS)}, got {sorted(fractions)}")
    values = [fractions[s] for s in SPLITS]
    if any(not v > 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ArgumentError("split", f"fractions must be > 0 and sum to 1, got {dict(fractions)}")
    if folds is None:
        if fold != 0:  # a fold asked for without folds would silently be val
            raise ArgumentError("fold", f"must be 0 while folds is null, got {fold}: set folds too")
        return
    at_least("folds", folds, 2)
    if by != "classes":
        raise ArgumentError(
            "folds",
            f"must be null with split_by={by!r} (folds divide classes): set split_by=classes",
        )
    if not 0 <= fold < folds:
        raise ArgumentError("fold", f"must be in 0..{folds - 1} (folds={folds}), got {fold}")


def split_indices(
    labels: Tensor,
    fractions: dict[str, float],
    by: str,
    seed: int,
    given: Tensor | None = None,
    class_names: list[str] | None = None,
    folds: int | None = None,
    fold: int = 0,
) -> dict[str, Tensor]:
    """Index tensors per split. `by="classes"`: disjoint class sets, so test classes are never seen
    in training; `by="samples"`: every class in every split, its samples divided.

    `given` (N,) holds a split code per sample (0 train, 1 val, 2 test, -1 free; see
    `ImageSet.split`). Given samples stay in their split; free samples are divided by `by` among
    the splits nobody was given, with their fractions renormalised. Every split is checked to hold
    at least 2 classes, each with at least 2 samples; errors name the classes.

    `folds=k`: the classes outside test (train + val of the usual split) are dealt by the seed into
    k class-disjoint folds; val is fold `fold`, train the others, test stays as it is."""
    check_split_options(fractions, by, folds, fold)
    if folds is not None and given is not None and bool((given >= 0).any()):
        raise ArgumentError(
            "folds",
            f"={folds} is not supported with given splits (a manifest's split column, "
            "Omniglot's official split): set it to null, or drop the column / set "
            "official_split=false",
        )
    given = torch.full_like(labels, -1) if given is None else given.to(labels.device).long()
    names = class_names or [
        f"class {i}" for i in range(int(labels.max()) + 1 if len(labels) else 0)
    ]
    fixed = [s for i, s in enumerate(SPLITS) if bool((given == i).any())]
    open_ = [s for s in SPLITS if s not in fixed]
    free = torch.nonzero(given < 0).flatten()
    out: dict[str, Tensor] = {s: torch.nonzero(given == i).flatten() for i, s in enumerate(SPLITS)}
    if free.numel() and not open_:
        raise DataError(
            f"{free.numel()} samples have no split while train, val and test are all given: "
            "give every sample a split, or leave one split to be drawn"
        )
    if open_:
        if not free.numel():
            raise DataError(f"no samples for split(s) {open_}: the given splits cover every sample")
        if len(open_) == len(SPLITS):
            part = {s: fractions[s] for s in SPLITS}
        else:
            part = {s: fractions[s] / sum(fractions[t] for t in open_) for s in open_}
        drawn = _draw(labels[free], part, by, seed, names)
        for s in open_:
            out[s] = free[drawn[s]]
    if folds is not None:
        out = _fold(labels, out, folds, fold, seed)
    for s in SPLITS:
        _check_split(s, labels[out[s]], names)
    return out


def _fold(labels: Tensor, out: dict[str, Tensor], folds: int, fold: int, seed: int):
    """Train and val of a class split re-dealt into `folds` class-disjoint folds of near-equal
    class counts (sizes differ by at most 1); val = fold `fold`, train = the rest."""
    pool = torch.cat([out["train"], out["val"]])
    classes = torch.unique(labels[pool])
    if classes.numel() < 2 * folds:
        raise ArgumentError(
            "folds",
            f"={folds} needs at least {2 * folds} non-test classes (2 per fold), there are "
            f"{classes.numel()}: lower it or give train+val a larger split share",
        )
    # its own stream of the split seed: the same folds for every trial, whatever the fold asked
    g = torch.Generator().manual_seed(seed + 7919)
    classes = classes[torch.randperm(classes.numel(), generator=g)]
    sizes = [classes.numel() // folds + (i < classes.numel() % folds) for i in range(folds)]
    held = torch.split(classes, sizes)[fold]
    in_val = torch.isin(labels[pool], held)
    return {
        "train": pool[~in_val].sort().values,
        "val": pool[in_val].sort().values,
        "test": out["test"],
    }


def _draw(
    labels: Tensor, fractions: dict[str, float], by: str, seed: int, names: list[str]
) -> dict[str, Tensor]:
    splits = list(fractions)
    g = torch.Generator().manual_seed(seed)
    if by == "classes":
        classes = torch.unique(labels)
        counts = _allocate(classes.numel(), fractions, minimum=2, what="classes")
        parts = torch.split(classes[torch.randperm(classes.numel(), generator=g)], counts)
        return {
            s: torch.nonzero(torch.isin(labels, p)).flatten()
            for s, p in zip(splits, parts, strict=True)
        }
    out: dict[str, list[Tensor]] = {s: [] for s in splits}
    for c in torch.unique(labels).tolist():  # once per class at set-up, not per batch
        members = torch.nonzero(labels == c).flatten()
        members = members[torch.randperm(members.numel(), generator=g)]
        counts = _allocate(
            members.numel(), fractions, minimum=2, what=f"samples of class {names[c]!r}"
        )
        for s, part in zip(splits, torch.split(members, counts), strict=True):
            out[s].append(part)
    return {s: torch.cat(v).sort().values for s, v in out.items()}


def _allocate(n: int, fractions: dict[str, float], minimum: int, what: str) -> list[int]:
    splits = list(fractions)
    counts = [max(minimum, round(n * fractions[s])) for s in splits[1:]]
    counts.insert(0, n - sum(counts))
    if counts[0] < minimum:
        raise ArgumentError(
            "split",
            f"{dict(fractions)} leaves {counts} {what} for {'/'.join(splits)}; each split needs "
            f"at least {minimum}, and there are only {n}",
        )
    return counts


def _check_split(split: str, labels: Tensor, names: list[str]) -> None:
    counts = torch.bincount(labels, minlength=len(names))
    present = torch.nonzero(counts).flatten()
    if present.numel() < 2:
        have = [names[i] for i in present.tolist()]
        raise DataError(
            f"split {split!r} has {present.numel()} class(es) {have}; it needs at least 2 "
            "(add classes, or change data.split or the manifest's split column)"
        )
    single = torch.nonzero(counts == 1).flatten().tolist()
    if single:
        shown = ", ".join(repr(names[i]) for i in single[:10]) + (
            " ..." if len(single) > 10 else ""
        )
        raise DataError(
            f"split {split!r}: {len(single)} class(es) have a single sample ({shown}), so no "
            "positive pair can be drawn; give them at least 2 samples in that split or remove them"
        )
