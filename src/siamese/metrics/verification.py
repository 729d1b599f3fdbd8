"""Verification on fixed pairs: a pair is predicted similar when its distance d < τ.

Every function takes `distances` (n,) and `is_same` (n,) bool; smaller d means more similar.
Work is done on the CPU in float64: n is only the number of pairs, and exact counts matter.
"""

import torch
from torch import Tensor


def _pairs(distances: Tensor, is_same: Tensor) -> tuple[Tensor, Tensor]:
    d = torch.as_tensor(distances).detach().to("cpu", torch.float64)
    y = torch.as_tensor(is_same).detach().to("cpu") != 0
    if d.ndim != 1 or y.shape != d.shape:
        raise ValueError(
            f"distances and is_same must be 1-D of equal length, got shapes "
            f"{tuple(d.shape)} and {tuple(y.shape)}"
        )
    if d.numel() == 0:
        raise ValueError("no pairs: distances is empty")
    if torch.isnan(d).any():
        raise ValueError("distances contain NaN")
    return d, y


def _need_both_classes(y: Tensor, what: str) -> None:
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.numel():
        only = "same-class (is_same all True)" if n_pos else "different-class (is_same all False)"
        raise ValueError(f"{what} needs both classes of pairs, got only {only} pairs")


def _sweep(d: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Sweep τ upwards over the m distinct distances u_1 < … < u_m.

    Returns the candidate thresholds τ_0..τ_m and, for each, the positive and negative pairs with
    d < τ_k (the k smallest distinct distances accepted). τ_0 = u_1 accepts nothing, τ_k is the
    midpoint (u_k + u_{k+1}) / 2, τ_m = u_m + 1 accepts everything. Grouping equal distances keeps
    ties together: no τ can split them.
    """
    d_sorted, order = torch.sort(d)
    u, counts = torch.unique_consecutive(d_sorted, return_counts=True)
    ends = counts.cumsum(0)
    zero = torch.zeros(1, dtype=torch.long)
    pos = torch.cat([zero, y[order].long().cumsum(0)[ends - 1]])
    neg = torch.cat([zero, ends]) - pos
    taus = torch.cat([u[:1], (u[:-1] + u[1:]) / 2, u[-1:] + 1.0])
    return taus, pos, neg


def roc_auc(distances: Tensor, is_same: Tensor) -> float:
    """ROC AUC of the score −d for the positive class `is_same`.

    AUC = P(d₊ < d₋) + ½·P(d₊ = d₋) over all (same, different) pairs of pairs, i.e. the
    Mann–Whitney U statistic with average ranks for ties, divided by n₊·n₋.
    Raises ValueError when only one class of pairs is present.
    """
    d, y = _pairs(distances, is_same)
    _need_both_classes(y, "roc_auc")
    _, pos, neg = _sweep(d, y)
    pos_g, neg_g = pos.diff().double(), neg.diff().double()
    # each negative beats the positives in smaller groups and ties with half of its own group
    wins = (neg_g * (pos[:-1].double() + pos_g / 2)).sum()
    return float(wins / (pos[-1] * neg[-1]))


def equal_error_rate(distances: Tensor, is_same: Tensor) -> tuple[float, float]:
    """(EER, τ at the EER): where false accept rate FAR(τ) = P(d < τ | different) equals
    false reject rate FRR(τ) = P(d ≥ τ | same).

    FAR − FRR rises strictly along the ROC points of `_sweep`; the EER and its τ are linearly
    interpolated between the two points where it changes sign.
    Raises ValueError when only one class of pairs is present.
    """
    d, y = _pairs(distances, is_same)
    _need_both_classes(y, "equal_error_rate")
    taus, pos, neg = _sweep(d, y)
    far = neg.double() / neg[-1]
    frr = 1.0 - pos.double() / pos[-1]
    gap = far - frr  # −1 at τ_0, +1 at τ_m
    j = int(torch.searchsorted(gap, torch.zeros(1, dtype=gap.dtype)))
    t = -gap[j - 1] / (gap[j] - gap[j - 1])
    eer = far[j - 1] + t * (far[j] - far[j - 1])
    tau = taus[j - 1] + t * (taus[j] - taus[j - 1])
    return float(eer), float(tau)


def choose_threshold(distances: Tensor, is_same: Tensor) -> float:
    """τ maximising the accuracy of the rule (d < τ) ⇔ same on these pairs.

    Candidates are the midpoints between consecutive distinct sorted distances, plus min d
    (accept none) and max d + 1 (accept all); on ties in accuracy the smallest τ wins.
    One sort and cumulative sums: O(n log n).
    """
    d, y = _pairs(distances, is_same)
    taus, pos, neg = _sweep(d, y)
    correct = pos + (neg[-1] - neg)
    return float(taus[torch.argmax(correct)])  # argmax returns the first (smallest τ) maximum


def accuracy_at(distances: Tensor, is_same: Tensor, threshold: float) -> float:
    """Fraction of pairs where (d < threshold) agrees with is_same."""
    d, y = _pairs(distances, is_same)
    return float(((d < threshold) == y).double().mean())


def verification_metrics(
    distances: Tensor, is_same: Tensor, threshold: float | None = None
) -> dict[str, float]:
    """{"auc", "eer", "accuracy", "threshold"} of these pairs.

    `threshold` None chooses τ on these pairs (the val split); a given τ (chosen on val) is applied
    unchanged (the test split), so test accuracy is not optimised on test.
    """
    tau = choose_threshold(distances, is_same) if threshold is None else float(threshold)
    return {
        "auc": roc_auc(distances, is_same),
        "eer": equal_error_rate(distances, is_same)[0],
        "accuracy": accuracy_at(distances, is_same, tau),
        "threshold": tau,
    }
