"""Miners and mined losses against brute-force loops, and their O(B²) memory."""

import itertools

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from siamese.core.distances import distance_matrix
from siamese.losses import (
    ContrastiveAllPairsLoss,
    TripletBatchAllLoss,
    TripletBatchHardLoss,
    TripletSemiHardLoss,
)
from siamese.losses.mining import (
    batch_all,
    batch_hard,
    hard_pair_mask,
    same_class_masks,
    semi_hard_negatives,
)

OPTIONS = list(itertools.product([True, False], [True, False]))  # squared_distance, squared_hinge


def pk_batch(b=12, classes=3, dim=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(b // classes)[torch.randperm(b, generator=g)]
    emb = torch.randn(b, dim, generator=g, dtype=torch.float64)
    return emb, labels


def triples(labels):
    """Every valid (a, p, n): p ≠ a of a's class, n of another class."""
    b = len(labels)
    for a, p, n in itertools.product(range(b), repeat=3):
        if p != a and labels[p] == labels[a] and labels[n] != labels[a]:
            yield a, p, n


def test_same_class_masks():
    labels = torch.tensor([0, 1, 0, 2])
    pos, neg = same_class_masks(labels)
    for i, j in itertools.product(range(4), repeat=2):
        assert pos[i, j] == (i != j and labels[i] == labels[j])
        assert neg[i, j] == (labels[i] != labels[j])


def test_batch_hard_picks_farthest_positive_and_nearest_negative():
    emb, labels = pk_batch()
    labels[0] = 7  # a class of one: anchor 0 has no positive
    dist = distance_matrix(emb, emb)
    pos_idx, neg_idx, valid = batch_hard(dist, labels)
    for a in range(len(labels)):
        positives = [dist[a, p] for p in range(len(labels)) if p != a and labels[p] == labels[a]]
        negatives = [dist[a, n] for n in range(len(labels)) if labels[n] != labels[a]]
        assert valid[a] == bool(positives)
        if positives:
            assert labels[pos_idx[a]] == labels[a] and pos_idx[a] != a
            assert labels[neg_idx[a]] != labels[a]
            assert dist[a, pos_idx[a]] == max(positives)
            assert dist[a, neg_idx[a]] == min(negatives)


@pytest.mark.parametrize("margin", [0.3, 1.0])
def test_semi_hard_negatives_are_the_nearest_in_the_band(margin):
    emb, labels = pk_batch()
    dist = distance_matrix(emb, emb)
    neg_idx, found = semi_hard_negatives(dist, labels, margin)
    anchors, positives = found.nonzero(as_tuple=True)
    negatives = neg_idx[anchors, positives]
    mined = {
        (a, p): n
        for a, p, n in zip(anchors.tolist(), positives.tolist(), negatives.tolist(), strict=True)
    }
    expected = {}
    for a, p, n in triples(labels):
        if dist[a, p] < dist[a, n] < dist[a, p] + margin:
            best = expected.get((a, p))
            if best is None or dist[a, n] < dist[a, best]:
                expected[(a, p)] = n
    n_pairs = sum(1 for a, p in itertools.permutations(range(12), 2) if labels[a] == labels[p])
    assert 0 < len(expected) < n_pairs  # some pairs mined, some dropped: the test means something
    assert mined.keys() == expected.keys()
    for (a, p), n in mined.items():
        assert dist[a, n] == dist[a, expected[(a, p)]]


def test_hard_pair_mask_matches_the_rule():
    emb, labels = pk_batch()
    dist = distance_matrix(emb, emb)
    hard = hard_pair_mask(dist, labels)
    b = len(labels)

    def hard_for(a, j):
        pos = [dist[a, p] for p in range(b) if p != a and labels[p] == labels[a]]
        neg = [dist[a, n] for n in range(b) if labels[n] != labels[a]]
        if j == a or not pos or not neg:
            return False
        return dist[a, j] > min(neg) if labels[j] == labels[a] else dist[a, j] < max(pos)

    for i, j in itertools.product(range(b), repeat=2):
        assert hard[i, j] == (hard_for(i, j) or hard_for(j, i))
    assert 0 < hard.sum() < b * (b - 1)


def brute_hinge(d_ap, d_an, margin, squared_hinge):
    h = max(0.0, d_ap - d_an + margin)
    return h * h if squared_hinge else h


@pytest.mark.parametrize("squared_distance, squared_hinge", OPTIONS)
def test_batch_all_equals_the_triple_loop(squared_distance, squared_hinge):
    emb, labels = pk_batch()
    loss = TripletBatchAllLoss(0.5, squared_distance, squared_hinge)
    out = loss(emb[:, None], labels[:, None])
    dist = distance_matrix(emb, emb, squared=squared_distance).tolist()
    hinges = [
        brute_hinge(dist[a][p], dist[a][n], 0.5, squared_hinge) for a, p, n in triples(labels)
    ]
    active = [h for h in hinges if h > 0]
    assert 0 < len(active) < len(hinges)
    assert out.parts["active_triplets"].item() == len(active)
    assert out.parts["active_fraction"].item() == pytest.approx(len(active) / len(hinges))
    assert out.loss.item() == pytest.approx(sum(active) / len(active), rel=1e-9)


@pytest.mark.parametrize("squared_distance, squared_hinge", OPTIONS)
def test_batch_all_gradient_equals_the_dense_cube(squared_distance, squared_hinge):
    emb, labels = pk_batch(seed=1)
    emb.requires_grad_(True)
    loss = TripletBatchAllLoss(1.0, squared_distance, squared_hinge)
    (grad,) = torch.autograd.grad(loss(emb[:, None], labels[:, None]).loss, emb)
    # the B×B×B reference the loss avoids
    d = distance_matrix(emb, emb, squared=squared_distance)
    pos, neg = same_class_masks(labels)
    h = (d[:, :, None] - d[:, None, :] + 1.0).clamp_min(0)
    h = h.pow(2) if squared_hinge else h
    active = pos[:, :, None] & neg[:, None, :] & (h > 0)
    (expected,) = torch.autograd.grad(h[active].sum() / active.sum(), emb)
    torch.testing.assert_close(grad, expected)


def test_batch_all_helper_is_zero_off_positive_pairs():
    emb, labels = pk_batch()
    dist = distance_matrix(emb, emb)
    sums, counts = batch_all(dist, labels, 1.0)
    pos, _ = same_class_masks(labels)
    assert (sums[~pos] == 0).all() and (counts[~pos] == 0).all() and (sums >= 0).all()


@pytest.mark.parametrize("squared_distance, squared_hinge", OPTIONS)
def test_batch_hard_loss_equals_the_loop(squared_distance, squared_hinge):
    emb, labels = pk_batch()
    out = TripletBatchHardLoss(1.0, squared_distance, squared_hinge)(emb[:, None], labels[:, None])
    dist = distance_matrix(emb, emb, squared=squared_distance)
    b = len(labels)
    per_anchor = []
    for a in range(b):
        d_ap = max(dist[a, p].item() for p in range(b) if p != a and labels[p] == labels[a])
        d_an = min(dist[a, n].item() for n in range(b) if labels[n] != labels[a])
        per_anchor.append(brute_hinge(d_ap, d_an, 1.0, squared_hinge))
    assert out.loss.item() == pytest.approx(sum(per_anchor) / b)
    assert out.parts["valid_fraction"].item() == 1.0


@pytest.mark.parametrize("squared_distance, squared_hinge", OPTIONS)
def test_semi_hard_loss_equals_the_loop(squared_distance, squared_hinge):
    emb, labels = pk_batch()
    margin = 0.5 if squared_distance else 0.3
    loss = TripletSemiHardLoss(margin, squared_distance, squared_hinge)
    out = loss(emb[:, None], labels[:, None])
    dist = distance_matrix(emb, emb, squared=squared_distance).tolist()
    nearest = {}
    for a, p, n in triples(labels):
        if dist[a][p] < dist[a][n] < dist[a][p] + margin:
            nearest[(a, p)] = min(nearest.get((a, p), float("inf")), dist[a][n])
    hinges = [
        brute_hinge(dist[a][p], d_an, margin, squared_hinge) for (a, p), d_an in nearest.items()
    ]
    assert hinges and all(h > 0 for h in hinges)
    assert out.loss.item() == pytest.approx(sum(hinges) / len(hinges))


class LargestTensor(TorchDispatchMode):
    """Records the element count of the largest tensor any op (forward or backward) produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                self.largest = max(self.largest, value.numel())
        return out


def test_largest_tensor_tracker_sees_a_cube():
    d = torch.rand(64, 64)
    with LargestTensor() as tracker:
        (d[:, :, None] - d[:, None, :]).sum()
    assert tracker.largest == 64**3


@pytest.mark.parametrize(
    "loss",
    [
        TripletBatchAllLoss(1.0, False, False),
        TripletBatchAllLoss(1.0, False, squared_hinge=True),
        TripletSemiHardLoss(1.0, False, False),
        TripletBatchHardLoss(1.0, False, False),
        ContrastiveAllPairsLoss(hard_pairs=True),
    ],
    ids=lambda loss: type(loss).__name__,
)
def test_mined_losses_stay_within_order_b_squared_memory(loss):
    b = 1024
    emb, labels = pk_batch(b=b, classes=64, dim=16)
    emb = emb.float().requires_grad_(True)
    with LargestTensor() as tracker:
        out = loss(emb[:, None], labels[:, None])
        out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(emb.grad).all()
    assert tracker.largest <= 2 * b * b  # a (B, B+1) prefix sum at most; B³ would be 1024× more
