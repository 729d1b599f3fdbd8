"""Loss formulas against hand-computed values, the shared signature, and the degenerate batches."""

import math

import pytest
import torch
import torch.nn.functional as F

from siamese.losses import (
    ContrastiveAllPairsLoss,
    ContrastiveLoss,
    LossOutput,
    SDRNLoss,
    TripletBatchAllLoss,
    TripletBatchHardLoss,
    TripletLoss,
    TripletSemiHardLoss,
)
from siamese.losses.triplet import TripletMarginBase

MINED = [TripletBatchAllLoss, TripletBatchHardLoss, TripletSemiHardLoss, ContrastiveAllPairsLoss]


def t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_contrastive_by_hand():
    # similar at d=5; dissimilar inside the margin (d=0.5); dissimilar outside it (d=2)
    emb = t([[[0, 0], [3, 4]], [[0, 0], [0, 0.5]], [[1, 1], [1, 3]]])
    labels = torch.tensor([[0, 0], [0, 1], [2, 1]])
    out = ContrastiveLoss(margin=1.0)(emb, labels)
    assert isinstance(out, LossOutput)
    assert out.loss.item() == pytest.approx((25 + 0.25 + 0) / 3)
    assert out.parts["positive"].item() == pytest.approx(25 / 3)
    assert out.parts["negative"].item() == pytest.approx(0.25 / 3)


def test_contrastive_margin_moves_the_hinge():
    emb = t([[[0, 0], [0, 2]]])
    labels = torch.tensor([[0, 1]])
    assert ContrastiveLoss(margin=1.0)(emb, labels).loss.item() == 0.0
    assert ContrastiveLoss(margin=3.0)(emb, labels).loss.item() == pytest.approx(1.0)


# T1: d(a,p)=1, d(a,n)=2; T2: d(a,p)=2, d(a,n)=1; margin 1.5
TRIPLETS = t([[[0, 0], [1, 0], [0, 2]], [[0, 0], [2, 0], [0, 1]]])
TRIPLET_LABELS = torch.tensor([[0, 0, 1], [0, 0, 1]])


@pytest.mark.parametrize(
    "squared_distance, squared_hinge, expected, active",
    [
        (True, False, (0 + 4.5) / 2, 0.5),  # max(0, 1−4+1.5), max(0, 4−1+1.5)
        (True, True, (0 + 4.5**2) / 2, 0.5),
        (False, False, (0.5 + 2.5) / 2, 1.0),  # max(0, 1−2+1.5), max(0, 2−1+1.5)
        (False, True, (0.5**2 + 2.5**2) / 2, 1.0),
    ],
)
def test_triplet_by_hand(squared_distance, squared_hinge, expected, active):
    loss = TripletLoss(margin=1.5, squared_distance=squared_distance, squared_hinge=squared_hinge)
    out = loss(TRIPLETS, TRIPLET_LABELS)
    assert out.loss.item() == pytest.approx(expected)
    assert out.parts["active_fraction"].item() == pytest.approx(active)


def random_pairs(n=8, dim=5, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, 2, dim, generator=g, requires_grad=True)
    labels = torch.randint(0, classes, (n, 2), generator=g)
    labels[: n // 2, 1] = labels[: n // 2, 0]  # some similar pairs for sure
    return emb, labels


def test_sdrn_with_lam_zero_is_exactly_contrastive():
    emb, labels = random_pairs()
    sdrn = SDRNLoss(num_classes=4, embedding_dim=5, lam=0.0, gamma=0.3)(emb, labels)
    contrastive = ContrastiveLoss()(emb, labels)
    assert torch.equal(sdrn.loss, contrastive.loss)
    assert sdrn.parts["kl"] > 0 and sdrn.parts["regulariser"] == 0


def test_sdrn_regulariser_matches_cross_entropy():
    emb, labels = random_pairs()
    loss = SDRNLoss(num_classes=4, embedding_dim=5, lam=0.7, gamma=0.0)
    out = loss(emb, labels)
    ce = F.cross_entropy(loss.discriminator(emb.flatten(0, 1)), labels.flatten(), reduction="none")
    contrastive = ContrastiveLoss()(emb, labels).loss
    assert out.parts["kl"].item() == pytest.approx(ce.mean().item())
    assert out.loss.item() == pytest.approx((contrastive + 0.7 * ce.mean()).item())
    out.loss.backward()
    for param in loss.discriminator.parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0


@pytest.mark.parametrize("gamma_offset, regulariser", [(-0.25, 2.0 * 0.25), (0.25, 0.0)])
def test_sdrn_gamma_switches_the_regulariser(gamma_offset, regulariser):
    emb, labels = random_pairs()
    loss = SDRNLoss(num_classes=4, embedding_dim=5, lam=2.0, gamma=math.log(4) + gamma_offset)
    with torch.no_grad():  # uniform q: every sample's KL is log 4
        loss.discriminator[-1].weight.zero_()
        loss.discriminator[-1].bias.zero_()
    out = loss(emb, labels)
    assert out.parts["kl"].item() == pytest.approx(math.log(4))
    assert out.parts["regulariser"].item() == pytest.approx(regulariser, abs=1e-6)
    assert out.loss.item() == pytest.approx(out.parts["contrastive"].item() + regulariser)


# 1-D points on the x axis: class 0 at 0 and 2, class 1 at 1.5 and 4. Pair distances:
# d01=2 (pos), d02=1.5, d03=4, d12=0.5, d13=2 (neg), d23=2.5 (pos). With m=1 the terms are
# 4, 0, 0, 0.25, 0, 6.25. Every pair is hard except (0, 3): 4 is farther than both anchors'
# farthest positives (2 and 2.5).
POINTS = t([[[0, 0]], [[2, 0]], [[1.5, 0]], [[4, 0]]])
POINT_LABELS = torch.tensor([[0], [0], [1], [1]])


@pytest.mark.parametrize(
    "hard_pairs, expected, kept", [(False, 10.5 / 6, 1.0), (True, 10.5 / 5, 5 / 6)]
)
def test_contrastive_all_pairs_by_hand(hard_pairs, expected, kept):
    out = ContrastiveAllPairsLoss(margin=1.0, hard_pairs=hard_pairs)(POINTS, POINT_LABELS)
    assert out.loss.item() == pytest.approx(expected)
    assert out.parts["kept_fraction"].item() == pytest.approx(kept)
    assert (out.parts["positive"] + out.parts["negative"]).item() == pytest.approx(expected)
    assert out.parts["valid_fraction"].item() == 1.0


TRIPLET_OPTIONS = {"margin": 1.0, "squared_distance": False, "squared_hinge": False}


def make(cls, distance="euclidean", **kwargs):
    if cls is SDRNLoss:
        return cls(**({"num_classes": 6, "embedding_dim": 3} | kwargs), distance=distance)
    if issubclass(cls, TripletMarginBase):  # no defaults: the triplet options differ by YAML
        kwargs = TRIPLET_OPTIONS | kwargs
    return cls(distance=distance, **kwargs)


def batch_for(loss, seed=0):
    g = torch.Generator().manual_seed(seed)
    size = loss.tuple_size
    emb = torch.randn(12, size, 3, generator=g, requires_grad=True)
    if size == 1:
        labels = torch.arange(3).repeat_interleave(4)[:, None]
    else:
        labels = torch.randint(0, 6, (12, size), generator=g)
        labels[:6, 1] = labels[:6, 0]
        if size == 3:
            labels[:, 2] = (labels[:, 0] + 1) % 6
    return emb, labels


ALL = [ContrastiveLoss, TripletLoss, SDRNLoss, *MINED]


@pytest.mark.parametrize("cls", ALL)
def test_cosine_distance_trains(cls):
    loss = make(cls, "cosine")
    emb, labels = batch_for(loss)
    out = loss(emb, labels)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.loss > 0
    assert torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0
    assert all(not v.requires_grad and v.dim() == 0 for v in out.parts.values())


@pytest.mark.parametrize("cls", MINED)
@pytest.mark.parametrize("labels", [torch.zeros(8, dtype=torch.long), torch.arange(8)])
def test_mined_batch_without_positive_or_negative_gives_zero(cls, labels):
    emb = torch.randn(8, 1, 3, requires_grad=True)
    out = make(cls)(emb, labels[:, None])
    assert out.loss.item() == 0.0 and out.loss.grad_fn is not None
    out.loss.backward()
    assert torch.isfinite(emb.grad).all()
    assert out.parts["valid_fraction"].item() == 0.0


@pytest.mark.parametrize("cls", ALL)
def test_tuple_size_mismatch_names_class_and_sizes(cls):
    loss = make(cls)
    wrong = 3 if loss.tuple_size == 2 else 2
    with pytest.raises(ValueError) as error:
        loss(torch.randn(4, wrong, 3), torch.zeros(4, wrong, dtype=torch.long))
    message = str(error.value)
    assert cls.__name__ in message
    assert f"size {loss.tuple_size}" in message and f"size {wrong}" in message


def test_label_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="labels"):
        ContrastiveLoss()(torch.randn(4, 2, 3), torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (ContrastiveLoss, {"margin": -1.0}, "margin must be > 0, got -1.0"),
        (TripletLoss, {"margin": 0.0}, "margin must be > 0"),
        (TripletBatchAllLoss, {"margin": float("nan")}, "margin must be > 0"),
        (ContrastiveAllPairsLoss, {"margin": -2}, "margin must be > 0"),
        (TripletSemiHardLoss, {"distance": "manhattan"}, "distance must be one of"),
        (SDRNLoss, {"num_classes": 1}, "num_classes must be"),
        (SDRNLoss, {"embedding_dim": 0}, "embedding_dim must be"),
        (SDRNLoss, {"hidden_dim": 0}, "hidden_dim must be"),
        (SDRNLoss, {"lam": -0.1}, "lam must be >= 0"),
        (SDRNLoss, {"gamma": -1}, "gamma must be >= 0"),
    ],
)
def test_bad_constructor_args_name_the_argument(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(cls, **kwargs)
