"""N-way one-shot accuracy (Koch, Zemel, Salakhutdinov 2015), over all classes or within a
group of classes (Omniglot's runs: the 20 ways of a trial are characters of one alphabet)."""

from collections.abc import Sequence

import torch
from torch import Tensor

from siamese.core.distances import Distance, check_distance, pair_distance

# trials scored per block: bounds memory at _BLOCK · n_way · D
_BLOCK = 4096


def one_shot_accuracy(
    embeddings: Tensor,
    labels: Tensor,
    n_way: int,
    trials: int,
    generator: torch.Generator,
    distance: Distance = "euclidean",
    groups: Tensor | None = None,
) -> float:
    """Fraction of `trials` N-way one-shot tasks answered correctly.

    A trial draws n_way distinct classes uniformly, the first (the true class) among classes with
    ≥ 2 samples; a query from the true class; one support sample from each of the n_way classes,
    the true class's support different from the query. It is correct when the true class's
    support is strictly nearer the query than every other support (a tie counts as wrong).
    Every class present is usable as a distractor. All trials are drawn at once from `generator`,
    so the same generator state gives the same trials.

    `groups` (one group id per label value, e.g. each character's alphabet) draws every trial
    within one group: the true class among those of groups with ≥ n_way classes, the distractors
    from its own group.
    """
    check_distance(distance)
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"embeddings must be (N, D) and labels (N,), got {tuple(embeddings.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if n_way < 2:
        raise ValueError(f"n_way must be >= 2, got {n_way}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    present, cls, counts = torch.unique(
        labels.detach().cpu(), return_inverse=True, return_counts=True
    )
    n_classes = counts.numel()
    if n_way > n_classes:
        raise ValueError(f"n_way={n_way} exceeds the number of usable classes ({n_classes})")
    usable = counts >= 2
    if groups is not None:  # each present class's group, and whether it has n_way classes
        _, groups, sizes = torch.unique(
            groups.cpu()[present], return_inverse=True, return_counts=True
        )
        usable &= sizes[groups] >= n_way
        if not usable.any():
            raise ValueError(f"no group has n_way={n_way} classes with a query and a support")
    eligible = torch.nonzero(usable).squeeze(1)
    if eligible.numel() == 0:
        raise ValueError("one-shot needs a class with >= 2 samples (query + support), none has")

    query_idx, support_idx = _draw_trials(cls, counts, eligible, n_way, trials, generator, groups)
    query_idx, support_idx = query_idx.to(embeddings.device), support_idx.to(embeddings.device)
    x = embeddings.detach()
    x = x if x.dtype == torch.float64 else x.float()
    correct = 0
    for b in range(0, trials, _BLOCK):
        qi, si = query_idx[b : b + _BLOCK], support_idx[b : b + _BLOCK]
        d = pair_distance(x[qi].unsqueeze(1), x[si], distance)  # (block, n_way)
        correct += int((d[:, 0] < d[:, 1:].min(1).values).sum())
    return correct / trials


def _draw_trials(
    cls: Tensor,
    counts: Tensor,
    eligible: Tensor,
    n_way: int,
    trials: int,
    g: torch.Generator,
    groups: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """(query (trials,), supports (trials, n_way)) sample indices, the true class's support first.
    `cls` is each sample's class index, `counts` each class's size, `eligible` the classes that
    may be the true one; `groups` (per class) keeps the distractors in the true class's group.
    All drawn at once from `g`, on its device."""
    dev = g.device
    n_classes = counts.numel()
    counts, eligible = counts.to(dev), eligible.to(dev)
    # samples grouped by class: the j-th sample of class c is by_class[start[c] + j]
    by_class = torch.sort(cls, stable=True).indices.to(dev)
    start = counts.cumsum(0) - counts

    true = eligible[torch.randint(eligible.numel(), (trials,), generator=g, device=dev)]
    # distractors: n_way − 1 distinct other classes, the smallest of random keys
    keys = torch.rand(trials, n_classes, generator=g, device=dev)
    keys[torch.arange(trials, device=dev), true] = 2.0
    if groups is not None:  # other groups' classes never chosen: n_way - 1 remain below 2
        groups = groups.to(dev)
        keys[groups[None, :] != groups[true][:, None]] = 2.0
    others = keys.topk(n_way - 1, dim=1, largest=False).indices
    ways = torch.cat([true.unsqueeze(1), others], dim=1)  # (trials, n_way), true class first

    def uniform_below(high: Tensor) -> Tensor:
        u = torch.rand(high.shape, generator=g, device=dev, dtype=torch.float64)
        return torch.minimum((u * high).long(), high - 1)

    n_true = counts[true]
    query = uniform_below(n_true)
    support_true = uniform_below(n_true - 1)
    support_true += support_true >= query  # skip the query's own slot
    support = uniform_below(counts[ways])
    support[:, 0] = support_true
    return by_class[start[true] + query], by_class[start[ways] + support]


def class_groups(class_names: Sequence[str]) -> Tensor | None:
    """Each class's group id, the group being its name up to the last "/" (Omniglot's
    `alphabet/character`); None unless every name has a group."""
    if not class_names or not all("/" in name for name in class_names):
        return None
    names = [name.rsplit("/", 1)[0] for name in class_names]
    ids = {name: i for i, name in enumerate(dict.fromkeys(names))}
    return torch.tensor([ids[name] for name in names])


def within_group_accuracies(
    embeddings: Tensor,
    labels: Tensor,
    class_names: Sequence[str],
    ways: Sequence[int],
    trials: int,
    seed: int,
    distance: Distance = "euclidean",
) -> dict[str, float]:
    """`one_shot_{n}way_within_group` for each n of `ways` that some group's classes reach, when
    every class name has a group (`class_groups`); else nothing. Trials fixed by `seed`."""
    groups = class_groups(class_names)
    if groups is None:
        return {}
    largest = int(torch.bincount(groups[torch.unique(labels.cpu())]).max())
    return {
        f"one_shot_{n}way_within_group": one_shot_accuracy(
            embeddings, labels, n, trials, torch.Generator().manual_seed(seed), distance, groups
        )
        for n in ways
        if n <= largest
    }
