"""FNMR at a target FMR, checked against a brute-force scan of every candidate threshold."""

import pytest
import torch

from siamese.metrics import fmr_key, fmr_thresholds, fnmr_at_fmr, threshold_at_fmr


def f64(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)  # exact decimals, compared with ==


def brute_force(d: list[float], same: list[bool], target: float) -> tuple[float, float, float]:
    """(τ, FNMR, FMR): the largest τ among all distances (ties share a τ) with FMR(τ) ≤ target."""
    neg = [x for x, s in zip(d, same, strict=True) if not s]
    pos = [x for x, s in zip(d, same, strict=True) if s]
    ok = [t for t in set(d) if sum(x < t for x in neg) / len(neg) <= target]
    tau = max(ok)
    return tau, sum(x >= tau for x in pos) / len(pos), sum(x < tau for x in neg) / len(neg)


def check(d: list[float], same: list[bool], target: float) -> None:
    tau, fnmr, fmr = brute_force(d, same, target)
    out = fnmr_at_fmr(f64(d), torch.tensor(same), targets=(target,))
    key = fmr_key(target)
    assert out[f"tau_at_fmr_{key}"] == tau
    assert out[f"fnmr_at_fmr_{key}"] == pytest.approx(fnmr, abs=1e-12)
    assert out[f"fmr_at_fmr_{key}"] == pytest.approx(fmr, abs=1e-12)
    assert fmr <= target


def test_known_scores_with_ties():
    # negatives 0.1, 0.3, 0.3, 0.3, 0.9 (n₋ = 5); a positive tied with the negatives at 0.3
    d = [0.05, 0.1, 0.2, 0.3, 0.3, 0.3, 0.3, 0.5, 0.9, 1.0]
    same = [True, False, True, True, False, False, False, True, False, True]
    # FMR ≤ 0.2 allows one false match: accept 0.1, reject the 0.3 group (3 negatives) as a whole
    out = fnmr_at_fmr(f64(d), torch.tensor(same), targets=(0.2, 0.7))
    assert out["tau_at_fmr_2e-01"] == 0.3
    assert out["fmr_at_fmr_2e-01"] == pytest.approx(1 / 5)
    assert out["fnmr_at_fmr_2e-01"] == pytest.approx(3 / 5)  # 0.3, 0.5, 1.0 of 5 positives
    # 0.7 allows 3 false matches, but the 0.3 group would make 4: the tie cannot be split
    assert out["tau_at_fmr_7e-01"] == 0.3
    for target in (0.2, 0.5, 0.7, 0.8, 0.99):
        check(d, same, target)


def test_target_below_one_over_negatives_accepts_no_dissimilar_pair():
    d = [0.4, 0.1, 0.2, 0.6, 0.3]
    same = [False, True, True, False, True]
    assert threshold_at_fmr(f64(d), torch.tensor(same), 1e-3) == 0.4
    out = fnmr_at_fmr(f64(d), torch.tensor(same), targets=(1e-3,))
    assert out == {"fnmr_at_fmr_1e-03": 0.0, "fmr_at_fmr_1e-03": 0.0, "tau_at_fmr_1e-03": 0.4}
    # a positive tied with the smallest negative is rejected with it
    out = fnmr_at_fmr(f64([0.1, 0.1, 0.5]), torch.tensor([True, False, False]), (1e-3,))
    assert out["fnmr_at_fmr_1e-03"] == 1.0 and out["tau_at_fmr_1e-03"] == 0.1


@pytest.mark.parametrize("seed", range(20))
def test_random_scores_with_many_ties_match_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(4, 60, (1,), generator=g))
    d = (torch.randint(0, 8, (n,), generator=g).double() / 4).tolist()  # few distinct values
    same = (torch.rand(n, generator=g) < 0.5).tolist()
    same[0], same[1] = True, False
    for target in (1e-3, 1e-2, 0.05, 0.1, 0.25, 0.5, 0.9):
        check(d, same, target)


def test_test_split_applies_val_thresholds_unchanged():
    val = fnmr_at_fmr(f64([0.1, 0.2, 0.5, 0.6]), torch.tensor([True, False, True, False]))
    taus = fmr_thresholds({f"val/{k}": v for k, v in val.items()})
    assert taus == {1e-2: 0.2, 1e-3: 0.2}
    test = fnmr_at_fmr(f64([0.15, 0.19, 0.3]), torch.tensor([True, False, True]), thresholds=taus)
    assert test["tau_at_fmr_1e-02"] == 0.2
    assert test["fmr_at_fmr_1e-02"] == 1.0  # test's one dissimilar pair falls below val's τ
    assert test["fnmr_at_fmr_1e-02"] == 0.5


def test_bad_inputs_name_the_problem():
    d, same = torch.tensor([0.1, 0.2]), torch.tensor([True, False])
    with pytest.raises(ValueError, match="must lie in"):
        fnmr_at_fmr(d, same, targets=(0.0,))
    with pytest.raises(ValueError, match="both classes"):
        fnmr_at_fmr(d, torch.tensor([True, True]))
    with pytest.raises(KeyError, match="no threshold for target FMR 0.01"):
        fnmr_at_fmr(d, same, targets=(1e-2,), thresholds={1e-3: 0.5})
    with pytest.raises(KeyError, match="tau_at_fmr_1e-02"):
        fmr_thresholds({})
