"""Verification on fixed pairs: a pair is predicted similar when its distance d < τ.

Every function takes `distances` (n,) and `is_same` (n,) bool; smaller d means more similar.
Work is done on the CPU in float64: n is only the number of pairs, and exact counts matter.
"""

import torch
from torch import Tensor


def checked_pairs(distances: Tensor, is_same: Tensor) -> tuple[Tensor, Tensor]:
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


def threshold_sweep(d: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
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
    d, y = checked_pairs(distances, is_same)
    _need_both_classes(y, "roc_auc")
    _, pos, neg = threshold_sweep(d, y)
    pos_g, neg_g = pos.diff().double(), neg.diff().double()
    # each negative beats the positives in smaller groups and ties with half of its own group
    wins = (neg_g * (pos[:-1].double() + pos_g / 2)).sum()
    return float(wins / (pos[-1] * neg[-1]))


def equal_error_rate(distances: Tensor, is_same: Tensor) -> tuple[float, float]:
    """(EER, τ at the EER): where false accept rate FAR(τ) = P(d < τ | different) equals
    false reject rate FRR(τ) = P(d ≥ τ | same).

    FAR − FRR rises strictly along the ROC points of `threshold_sweep`; the EER and its τ are linearly
    interpolated between the two points where it changes sign.
    Raises ValueError when only one class of pairs is present.
    """
    d, y = checked_pairs(distances, is_same)
    _need_both_classes(y, "equal_error_rate")
    taus, pos, neg = threshold_sweep(d, y)
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
    d, y = checked_pairs(distances, is_same)
    taus, pos, neg = threshold_sweep(d, y)
    correct = pos + (neg[-1] - neg)
    return float(taus[torch.argmax(correct)])  # argmax returns the first (smallest τ) maximum


def accuracy_at(distances: Tensor, is_same: Tensor, threshold: float) -> float:
    """Fraction of pairs where (d < threshold) agrees with is_same."""
    d, y = checked_pairs(distances, is_same)
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


DEFAULT_FMR_TARGETS = (1e-2, 1e-3)


def fmr_key(target: float) -> str:
    """The name part of a target false-match rate: 1e-2 → "1e-02" (no '/' or '.': safe as a
    metrics.json key and a TensorBoard tag)."""
    return f"{float(target):.0e}"


def _check_target(target: float) -> float:
    target = float(target)
    if not 0.0 < target < 1.0:
        raise ValueError(f"a target false-match rate must lie in (0, 1), got {target}")
    return target


def threshold_at_fmr(distances: Tensor, is_same: Tensor, target: float) -> float:
    """The largest τ whose false-match rate FMR(τ) = P(d < τ | different) is ≤ `target`.

    Pairs of equal distance are accepted or rejected together, so FMR only takes the values
    (negatives with d < u) / n₋ at the distinct distances u; the largest τ keeping it ≤ target is
    the smallest distance of a dissimilar pair that must stay rejected: every pair strictly below
    it is accepted, that pair and every pair at its distance are rejected. When even one false
    match is too many (target < 1/n₋), τ is the smallest dissimilar distance and FMR = 0.
    Raises ValueError when only one class of pairs is present.
    """
    target = _check_target(target)
    d, y = checked_pairs(distances, is_same)
    _need_both_classes(y, "threshold_at_fmr")
    _, pos, neg = threshold_sweep(d, y)
    u = torch.unique(d)  # sorted; accepting the k smallest groups gives neg[k] false matches
    fmr = neg.double() / neg[-1]
    # FMR rises with k and reaches 1 at k = m: the largest admissible k is below m
    k = int(torch.searchsorted(fmr, torch.tensor([target], dtype=fmr.dtype), right=True)) - 1
    return float(u[k])  # d < u[k] accepts exactly the k smallest groups


def fnmr_at_fmr(
    distances: Tensor,
    is_same: Tensor,
    targets: tuple[float, ...] | list[float] = DEFAULT_FMR_TARGETS,
    thresholds: dict[float, float] | None = None,
) -> dict[str, float]:
    """False non-match rate at chosen false-match rates, for each target t ("1e-02" = fmr_key(t)):

    - "tau_at_fmr_1e-02": τ, from `threshold_at_fmr` on these pairs (val) when `thresholds` is
      None, else thresholds[t] applied unchanged (test, with val's τ);
    - "fnmr_at_fmr_1e-02": FNMR(τ) = P(d ≥ τ | same);
    - "fmr_at_fmr_1e-02": the FMR(τ) = P(d < τ | different) achieved on these pairs (≤ t on val).
    """
    d, y = checked_pairs(distances, is_same)
    _need_both_classes(y, "fnmr_at_fmr")
    out = {}
    for target in targets:
        target = _check_target(target)
        if thresholds is None:
            tau = threshold_at_fmr(d, y, target)
        elif target in thresholds:
            tau = float(thresholds[target])
        else:
            raise KeyError(f"no threshold for target FMR {target} (given: {sorted(thresholds)})")
        key = fmr_key(target)
        out[f"fnmr_at_fmr_{key}"] = float((d[y] >= tau).double().mean())
        out[f"fmr_at_fmr_{key}"] = float((d[~y] < tau).double().mean())
        out[f"tau_at_fmr_{key}"] = tau
    return out


def fmr_thresholds(
    metrics: dict[str, float], targets: tuple[float, ...] | list[float] = DEFAULT_FMR_TARGETS
) -> dict[float, float]:
    """{target: τ} read back from a `fnmr_at_fmr` result (keys may carry a "val/" prefix): the
    val thresholds to apply to test."""
    out = {}
    for target in targets:
        key = f"tau_at_fmr_{fmr_key(target)}"
        found = [v for k, v in metrics.items() if k == key or k.endswith("/" + key)]
        if not found:
            raise KeyError(f"{key} not in metrics: score val with fnmr_at_fmr first")
        out[float(target)] = float(found[0])
    return out
