"""In-batch miners on a (B, B) distance matrix d[a, j] and its (B,) labels.

Convention: the row is the anchor. Miners pick indices without gradient (they read a detached d);
the losses then gather from the attached d. Every miner is O(B²) in memory, never O(B³): where a
choice depends on all (anchor, positive, negative) triples, each anchor's negative distances are
sorted once and each positive looks its d(a,p) up in them with searchsorted (O(B² log B) time).
"""

import torch
from torch import Tensor

INF = float("inf")


def same_class_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """(pos_mask, neg_mask), both (B, B): same label without the diagonal, and different label."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def valid_anchors(pos_mask: Tensor, neg_mask: Tensor) -> Tensor:
    """(B,) anchors that have at least one positive and one negative in the batch."""
    return pos_mask.any(1) & neg_mask.any(1)


def batch_hard(dist: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per anchor the farthest positive and the nearest negative (Hermans et al. 2017).

    Returns (pos_idx, neg_idx, valid), each (B,); indices of invalid anchors are meaningless.
    """
    pos_mask, neg_mask = same_class_masks(labels)
    d = dist.detach()
    pos_idx = d.masked_fill(~pos_mask, -INF).argmax(1)
    neg_idx = d.masked_fill(~neg_mask, INF).argmin(1)
    return pos_idx, neg_idx, valid_anchors(pos_mask, neg_mask)


def semi_hard_negatives(dist: Tensor, labels: Tensor, margin: float) -> tuple[Tensor, Tensor]:
    """Dense semi-hard mining (Schroff et al. 2015), free of host syncs: for every (a, p) the
    nearest negative n with d(a,p) < d(a,n) < d(a,p) + margin.

    Returns (neg_idx, mined), both (B, B) indexed [a, p]; mined is False where (a, p) is not a
    positive pair or has no semi-hard negative (such pairs are dropped, no fallback).
    """
    pos_mask, neg_mask = same_class_masks(labels)
    d = dist.detach()
    sorted_d, order = d.masked_fill(~neg_mask, INF).sort(dim=1)
    # the first negative strictly farther than the positive is the nearest semi-hard candidate
    first = torch.searchsorted(sorted_d, d.contiguous(), right=True).clamp_max(len(labels) - 1)
    nearest = sorted_d.gather(1, first)
    mined = pos_mask & (nearest > d) & (nearest < d + margin)
    return order.gather(1, first), mined


def batch_all(
    dist: Tensor, labels: Tensor, margin: float, squared_hinge: bool = False
) -> tuple[Tensor, Tensor]:
    """For every anchor-positive pair (a, p): the sum over negatives n of max(0, d_ap − d_an + m)
    (squared if squared_hinge) and the number k of n with a positive hinge; both (B, B), 0 off the
    positive pairs. Differentiable in dist.

    With c = d_ap + m, the active negatives are those with d_an < c: a prefix of a's sorted negative
    distances, so the sums follow from prefix sums S1 = Σ d_an and S2 = Σ d_an²:
    Σ(c − d_an) = k·c − S1 and Σ(c − d_an)² = k·c² − 2c·S1 + S2.
    """
    pos_mask, neg_mask = same_class_masks(labels)
    sorted_d, _ = dist.masked_fill(~neg_mask, INF).sort(dim=1)
    c = dist + margin
    k = torch.searchsorted(sorted_d.detach(), c.detach().contiguous())  # count of d_an < c
    neg_d = sorted_d.where(sorted_d.isfinite(), 0.0)  # non-negatives sit at the end; never summed

    def prefix_sum(values: Tensor) -> Tensor:
        zero = values.new_zeros(len(labels), 1)
        return torch.cat([zero, values.cumsum(1)], dim=1).gather(1, k)

    s1 = prefix_sum(neg_d)
    if squared_hinge:
        total = k * c.pow(2) - 2 * c * s1 + prefix_sum(neg_d.pow(2))
    else:
        total = k * c - s1
    # clamp: rounding in the differences can leave tiny negatives where the true sum is ~0
    return total.clamp_min(0).where(pos_mask, 0.0), k.where(pos_mask, 0)


def hard_pair_mask(dist: Tensor, labels: Tensor) -> Tensor:
    """(B, B) hard pairs: a positive pair farther than its anchor's nearest negative, a negative
    pair closer than its anchor's farthest positive. Symmetric: a pair {i, j} is hard when it is
    hard with either i or j as anchor. Anchors without a positive or a negative have no hard pair.
    """
    pos_mask, neg_mask = same_class_masks(labels)
    d = dist.detach()
    nearest_neg = d.masked_fill(~neg_mask, INF).amin(1, keepdim=True)
    farthest_pos = d.masked_fill(~pos_mask, -INF).amax(1, keepdim=True)
    hard = (pos_mask & (d > nearest_neg)) | (neg_mask & (d < farthest_pos))
    return hard | hard.T
