"""Metrics against independent brute-force loops and hand-computed cases."""

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from siamese.core.distances import distance_matrix
from siamese.metrics import (
    accuracy_at,
    choose_threshold,
    equal_error_rate,
    knn,
    one_shot_accuracy,
    retrieval_metrics,
    roc_auc,
    verification_metrics,
)
from siamese.metrics.retrieval import average_precision_at_r

KS = (1, 2, 4, 8)


# ---- brute-force references: plain Python, one query at a time ----


def _dist(a: list[float], b: list[float], kind: str) -> float:
    if kind == "euclidean":
        return math.dist(a, b)
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return 1.0 - dot / (math.hypot(*a) * math.hypot(*b))


def brute_retrieval(emb: torch.Tensor, labels: torch.Tensor, ks, kind: str) -> dict[str, float]:
    x, y = emb.tolist(), labels.tolist()
    found = {k: [] for k in ks}
    aps = []
    for i in range(len(y)):
        others = [j for j in range(len(y)) if j != i]
        r = sum(y[j] == y[i] for j in others)
        if r == 0:
            continue
        ranked = sorted(others, key=lambda j: _dist(x[i], x[j], kind))
        rel = [y[j] == y[i] for j in ranked]
        for k in ks:
            found[k].append(any(rel[:k]))
        hits, ap = 0, 0.0
        for i_rank in range(r):
            if rel[i_rank]:
                hits += 1
                ap += hits / (i_rank + 1)
        aps.append(ap / r)
    out = {"p_at_1": sum(found[1]) / len(found[1])}
    out |= {f"recall_at_{k}": sum(found[k]) / len(found[k]) for k in ks}
    out["map_at_r"] = sum(aps) / len(aps)
    return out


def brute_auc(d: list[float], same: list[bool]) -> float:
    pos = [a for a, s in zip(d, same, strict=True) if s]
    neg = [a for a, s in zip(d, same, strict=True) if not s]
    wins = sum(1.0 if p < q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def _far_frr(d: list[float], same: list[bool], tau: float) -> tuple[float, float]:
    n_pos = sum(same)
    far = sum(a < tau for a, s in zip(d, same, strict=True) if not s) / (len(d) - n_pos)
    frr = sum(a >= tau for a, s in zip(d, same, strict=True) if s) / n_pos
    return far, frr


# ---- data ----


def clustered(sizes, dim=6, spread=1.0, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """Classes of the given sizes around random centres, float64, rows shuffled."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((s,), c) for c, s in enumerate(sizes)])
    centres = torch.randn(len(sizes), dim, generator=g, dtype=torch.float64)
    emb = centres[labels] + spread * torch.randn(len(labels), dim, generator=g, dtype=torch.float64)
    perm = torch.randperm(len(labels), generator=g)
    return emb[perm], labels[perm]


def random_pairs(n=300, seed=0, decimals=None) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    same = torch.rand(n, generator=g) < 0.4
    d = torch.rand(n, generator=g, dtype=torch.float64) + 0.3 * (~same)  # overlapping classes
    if decimals is not None:
        d = torch.round(d, decimals=decimals)  # many ties
    return d, same


# ---- retrieval ----


@pytest.mark.parametrize(
    "sizes",
    [(12, 12, 12, 12, 12), (1, 2, 3, 9, 20, 25)],  # even; uneven with a singleton class
)
@pytest.mark.parametrize("kind", ["euclidean", "cosine"])
@pytest.mark.parametrize("chunk_size", [1024, 7])
def test_retrieval_matches_brute_force(sizes, kind, chunk_size):
    emb, labels = clustered(sizes, seed=len(sizes))
    got = retrieval_metrics(emb, labels, KS, kind, chunk_size)
    want = brute_retrieval(emb, labels, KS, kind)
    assert list(got) == [
        "p_at_1",
        "recall_at_1",
        "recall_at_2",
        "recall_at_4",
        "recall_at_8",
        "map_at_r",
    ]
    for key in want:
        if key == "map_at_r":
            assert got[key] == pytest.approx(want[key], abs=1e-12)
        else:
            assert got[key] == want[key], key
    assert 0 < got["p_at_1"] < 1  # the data is not trivially separable


@pytest.mark.parametrize(
    "sizes",
    # even; uneven with a singleton; N odd, so the last group of 2 holds a sample and padding
    [(12, 12, 12, 12, 12), (1, 2, 3, 9, 20, 25), (1, 2, 3, 9, 20, 26)],
)
@pytest.mark.parametrize("kind", ["euclidean", "cosine"])
@pytest.mark.parametrize("chunk_size", [1024, 6])
def test_grouped_retrieval_matches_brute_force(sizes, kind, chunk_size, monkeypatch):
    # groups of 2 so that 60 samples make 30 groups, more than the k = 25 sought
    monkeypatch.setattr(knn, "_GROUP", 2)
    emb, labels = clustered(sizes, seed=len(sizes))
    used = []
    monkeypatch.setattr(knn, "grouped", _spy(knn.grouped, used))
    got = retrieval_metrics(emb, labels, KS, kind, chunk_size, method="grouped")
    assert used, "the grouped search did not run"
    assert got == pytest.approx(brute_retrieval(emb, labels, KS, kind), abs=1e-12)


def _spy(function, calls):
    def spy(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)

    return spy


@pytest.mark.parametrize("n", [403, 416, 417])  # a partial last group, whole groups, one spare
def test_grouped_neighbours_are_the_nearest(n):
    # small groups, blocks and pending buffer: many blocks, and pending minima merged many times
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    queries = torch.arange(n)
    r = torch.full((n,), 9)
    passes = knn.grouped(x, x.pow(2).sum(1), queries, r, 9, 9, 4, 8, pending=2)
    got = torch.cat([nearest for _, _, nearest in passes])
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    assert torch.equal(got, d.topk(9, dim=1, largest=False).indices)


def test_retrieval_picks_grouped_on_a_cpu_at_scale(monkeypatch):
    g = torch.Generator().manual_seed(0)
    n = knn._GROUPED_MIN_N
    emb, labels = torch.randn(n, 8, generator=g), torch.randint(0, 2000, (n,), generator=g)
    used = []
    monkeypatch.setattr(knn, "grouped", _spy(knn.grouped, used))
    auto = retrieval_metrics(emb, labels, KS)
    assert len(used) == 1
    # float32 rounds the two methods' distances differently: only near ties may differ
    assert auto == pytest.approx(retrieval_metrics(emb, labels, KS, method="direct"), abs=1e-6)
    assert len(used) == 1
    big = torch.randint(0, 20, (n,), generator=g)  # R ≈ 1000: too few groups per neighbour
    retrieval_metrics(emb, big, KS)
    assert len(used) == 1


def test_grouped_falls_back_where_groups_are_too_few():
    emb, labels = clustered((12, 12, 12, 12, 12), seed=5)  # 2 groups of 32 for k = 11
    got = retrieval_metrics(emb, labels, KS, method="grouped")
    assert got == pytest.approx(brute_retrieval(emb, labels, KS, "euclidean"), abs=1e-12)


def test_retrieval_k_beyond_n_and_float32():
    emb, labels = clustered((3, 4, 5), seed=3)
    got = retrieval_metrics(emb.float(), labels, (1, 50), chunk_size=5)
    assert got["recall_at_50"] == 1.0  # all 11 other samples are among the nearest
    want = brute_retrieval(emb, labels, (1,), "euclidean")
    assert got["p_at_1"] == want["p_at_1"]


def test_retrieval_singletons_are_not_queries():
    # the singleton (class 9) sits on top of class 0: as a query it would score 1 but is excluded;
    # as a neighbour it still pushes class 0's same-class samples down
    emb = torch.tensor([[0.0], [0.1], [5.0], [5.2], [0.05]])
    labels = torch.tensor([0, 0, 1, 1, 9])
    got = retrieval_metrics(emb, labels, (1,))
    assert got["p_at_1"] == 0.5  # class 0 queries meet the singleton first, class 1 its twin


def test_map_at_r_hand_computed():
    # one query, R = 3, relevance of the 3 nearest 1, 0, 1 (a 4th neighbour is beyond R)
    rel = torch.tensor([[True, False, True, True]])
    ap = average_precision_at_r(rel, torch.tensor([3]))
    assert ap.item() == pytest.approx((1 + 2 / 3) / 3)

    # 1-D: class A at 0, 1, 3.5, 10 and a singleton B at 2.2 (never a query)
    # A@0: A B A -> 5/9; A@1: A B A -> 5/9; A@3.5: B A A -> (1/2 + 2/3)/3 = 7/18; A@10: A B A -> 5/9
    emb = torch.tensor([[0.0], [1.0], [3.5], [10.0], [2.2]])
    labels = torch.tensor([0, 0, 0, 0, 1])
    got = retrieval_metrics(emb, labels, (1, 2), chunk_size=3)
    assert got["map_at_r"] == pytest.approx((3 * 5 / 9 + 7 / 18) / 4)
    assert got["p_at_1"] == 0.75
    assert got["recall_at_2"] == 1.0


def perfect_embeddings(n_classes=5, per_class=6):
    """Tight clusters far apart: class c around 100·e_c."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    emb = 100.0 * torch.eye(n_classes)[labels] + 0.01 * torch.randn(
        len(labels), n_classes, generator=g
    )
    return emb, labels


def all_pairs(emb, labels):
    i, j = torch.triu_indices(len(labels), len(labels), offset=1)
    return (emb[i] - emb[j]).norm(dim=1), labels[i] == labels[j]


def test_perfect_embeddings():
    emb, labels = perfect_embeddings()
    got = retrieval_metrics(emb, labels, KS)
    assert all(v == 1.0 for v in got.values()), got
    d, same = all_pairs(emb, labels)
    ver = verification_metrics(d, same)
    assert ver["auc"] == 1.0 and ver["eer"] == 0.0 and ver["accuracy"] == 1.0
    assert d[same].max() < ver["threshold"] < d[~same].min()
    g = torch.Generator().manual_seed(0)
    assert one_shot_accuracy(emb, labels, 5, 200, g) == 1.0


def test_adversarial_embeddings():
    # 4 far-apart groups, each one sample of each of 3 classes: within a group the classes are
    # 0.14 apart, same-class samples are in other groups (141 away): same class is always farthest
    groups, classes = 4, 3
    group = torch.arange(groups).repeat_interleave(classes)
    labels = torch.arange(classes).repeat(groups)
    emb = torch.cat([100.0 * torch.eye(groups)[group], 0.1 * torch.eye(classes)[labels]], dim=1)
    got = retrieval_metrics(emb, labels, (1, 2, 3))
    assert got["p_at_1"] == 0.0 and got["recall_at_2"] == 0.0
    # the nearest other group's sample is the same class: rel = 0, 0, 1 in the top R = 3
    assert got["recall_at_3"] == 1.0
    assert got["map_at_r"] == pytest.approx(1 / 9)
    d, same = all_pairs(emb, labels)
    near = ~same & (d < 1.0)  # only in-group different-class pairs
    d, same = d[same | near], same[same | near]
    assert roc_auc(d, same) == 0.0
    assert equal_error_rate(d, same)[0] == 1.0


def test_retrieval_never_builds_n_by_n():
    class MaxNumel(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    self.largest = max(self.largest, t.numel())
            return out

    n = 3000
    g = torch.Generator().manual_seed(0)
    # 500 classes: k ≈ 15, so the grouped search has 6 groups of 32 per neighbour sought
    emb, labels = torch.randn(n, 16, generator=g), torch.randint(0, 500, (n,), generator=g)
    with MaxNumel() as probe:
        distance_matrix(emb[:100], emb)
    assert probe.largest >= 100 * n  # the probe sees the tensors made inside a call
    for method in ("direct", "grouped"):
        with MaxNumel() as probe:
            retrieval_metrics(emb, labels, KS, chunk_size=256, method=method)
        assert probe.largest < n * n / 4, method
        assert probe.largest >= 256 * n * 0.9, method  # one chunk's distance block


class _ScalarReads(TorchDispatchMode):
    """Counts tensor → Python number reads on the device (each one a host sync on a GPU)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.item.default):
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_retrieval_syncs_do_not_grow_with_chunks():
    # uneven R across chunks, so each chunk needs its own k: the plan is read once, not per chunk
    emb, labels = clustered((2, 3, 5, 8, 13, 21, 34), seed=4)
    with _ScalarReads() as few:
        one = retrieval_metrics(emb, labels, KS, chunk_size=1000)
    with _ScalarReads() as many:
        tiny = retrieval_metrics(emb, labels, KS, chunk_size=3)  # 29 chunks
    assert many.count == few.count
    assert tiny == pytest.approx(one, abs=1e-12)


def test_retrieval_automatic_chunk_matches_brute_force():
    emb, labels = clustered((4, 7, 1, 12, 30), seed=5)
    got = retrieval_metrics(emb, labels, KS, "cosine", chunk_size=None)
    want = brute_retrieval(emb, labels, KS, "cosine")
    assert got == pytest.approx(want, abs=1e-12)
    assert got == retrieval_metrics(emb, labels, KS, "cosine", chunk_size=1)


def test_retrieval_rejects_bad_input():
    with pytest.raises(ValueError, match="no query"):
        retrieval_metrics(torch.randn(3, 2), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="distance"):
        retrieval_metrics(torch.randn(3, 2), torch.tensor([0, 0, 1]), distance="manhattan")
    with pytest.raises(ValueError, match="chunk_size"):
        retrieval_metrics(torch.randn(3, 2), torch.tensor([0, 0, 1]), chunk_size=0)
    with pytest.raises(ValueError, match="method must be auto, direct or grouped, got 'fast'"):
        retrieval_metrics(torch.randn(3, 2), torch.tensor([0, 0, 1]), method="fast")


# ---- verification ----


@pytest.mark.parametrize("decimals", [None, 1])
def test_roc_auc_matches_pairwise_count(decimals):
    d, same = random_pairs(decimals=decimals)
    assert roc_auc(d, same) == pytest.approx(brute_auc(d.tolist(), same.tolist()), abs=1e-12)


def test_roc_auc_all_tied_is_half():
    assert roc_auc(torch.ones(6), torch.tensor([1, 0, 1, 0, 0, 1]).bool()) == 0.5


def test_roc_auc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes.*same-class"):
        roc_auc(torch.rand(5), torch.ones(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="both classes.*different-class"):
        roc_auc(torch.rand(5), torch.zeros(5, dtype=torch.bool))


def test_eer_matches_threshold_sweep():
    d, same = random_pairs(n=400, seed=1)
    eer, tau = equal_error_rate(d, same)
    dl, sl = d.tolist(), same.tolist()
    sweep = [_far_frr(dl, sl, t) for t in torch.linspace(-0.01, 1.31, 4000).tolist()]
    far, frr = min(sweep, key=lambda p: abs(p[0] - p[1]))
    step = 1 / min(sum(sl), len(sl) - sum(sl))
    assert eer == pytest.approx((far + frr) / 2, abs=step)
    far_tau, frr_tau = _far_frr(dl, sl, tau)
    assert abs(far_tau - eer) <= step and abs(frr_tau - eer) <= step
    assert 0.1 < eer < 0.5


def test_choose_threshold_is_smallest_best():
    d, same = random_pairs(n=200, seed=2, decimals=1)
    tau = choose_threshold(d, same)
    u = sorted(set(d.tolist()))
    candidates = [u[0]] + [(a + b) / 2 for a, b in zip(u, u[1:], strict=False)] + [u[-1] + 1]
    accs = [accuracy_at(d, same, t) for t in candidates]
    best = max(accs)
    assert tau == candidates[accs.index(best)]
    # no threshold at all, even off the candidate grid, does better
    grid = torch.linspace(-0.5, 2.0, 2001).tolist()
    assert max(accuracy_at(d, same, t) for t in grid) <= best
    assert accuracy_at(d, same, tau) == best


def test_accuracy_is_strict_below_threshold():
    d, same = torch.tensor([1.0, 2.0]), torch.tensor([True, False])
    assert accuracy_at(d, same, 2.0) == 1.0  # d = τ is predicted different
    assert accuracy_at(d, same, 1.0) == 0.5


def test_val_threshold_is_applied_to_test():
    val_d, val_same = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), torch.tensor([1, 1, 1, 0, 0, 0])
    test_d, test_same = (
        torch.tensor([1.0, 2.0, 5.0, 6.5, 3.0, 4.0, 7.0]),
        torch.tensor([1, 1, 1, 1, 0, 0, 0]),
    )
    val = verification_metrics(val_d, val_same)
    assert val["threshold"] == 3.5 and val["accuracy"] == 1.0
    assert choose_threshold(test_d, test_same) == 2.5  # test's own optimum: 5/7, ties 6.75
    test = verification_metrics(test_d, test_same, threshold=val["threshold"])
    assert test["threshold"] == 3.5
    assert test["accuracy"] == pytest.approx(4 / 7)
    assert verification_metrics(test_d, test_same)["accuracy"] == pytest.approx(5 / 7)


# ---- one-shot ----


def test_one_shot_is_reproducible_and_at_chance_on_noise():
    # every class has exactly 2 samples: were the query ever its own support, accuracy would
    # rise well above chance (1/5)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(40).repeat_interleave(2)
    emb = torch.randn(len(labels), 8, generator=g)
    a = one_shot_accuracy(emb, labels, 5, 20000, torch.Generator().manual_seed(1))
    b = one_shot_accuracy(emb, labels, 5, 20000, torch.Generator().manual_seed(1))
    assert a == b
    assert a == pytest.approx(0.2, abs=0.02)
    c = one_shot_accuracy(emb, labels, 5, 20000, torch.Generator().manual_seed(2))
    assert c != a


def test_one_shot_singletons_are_distractors_only():
    # classes 1..4 are singletons sitting on class 0's query: a singleton as true class would
    # need a support that is not the query, so only class 0 can be the true class
    emb = torch.tensor([[0.0], [1.0], [0.5], [0.5], [0.5], [0.5]])
    labels = torch.tensor([0, 0, 1, 2, 3, 4])
    g = torch.Generator().manual_seed(0)
    assert one_shot_accuracy(emb, labels, 5, 100, g) == 0.0  # every distractor is nearer
    with pytest.raises(ValueError, match="n_way=6.*usable classes \\(5\\)"):
        one_shot_accuracy(emb, labels, 6, 10, g)
    with pytest.raises(ValueError, match=">= 2 samples"):
        one_shot_accuracy(emb[1:], labels[1:], 2, 10, g)
