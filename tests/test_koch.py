"""Koch et al. 2015: the backbone at every size, the pair head's loss by hand, verification scored
by the head (in training, evaluation, checkpoints and exports), and re-ranking by it."""

import json
import math

import pytest
import torch
from torch import nn

from siamese.core.errors import ArgumentError
from siamese.export import export_checkpoint
from siamese.inference import load_model
from siamese.losses import ContrastiveLoss, KochLoss
from siamese.metrics.scoring import Scorer, score_split
from siamese.models.backbones import Koch, koch_layers
from siamese.models.normalization import BatchNorm, NoNorm
from siamese.run.build import build, build_scorer
from siamese.verify import verify
from tests.test_export import glyphs, save_run, write_pngs

PAPER = (10, 7, 4, 4)


def test_the_backbone_at_105_px_is_the_papers():
    layers, side = koch_layers(105, PAPER)
    # valid convolutions 105 → 96 → 48 → 42 → 21 → 18 → 9 → 6: 256 maps of 6 × 6
    assert layers == [(10, 0, True), (7, 0, True), (4, 0, True), (4, 0, False)] and side == 6
    net = Koch(1, 105, (64, 128, 128, 256), PAPER, 4096, NoNorm())
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (64, (10, 10), (0, 0)),
        (128, (7, 7), (0, 0)),
        (128, (4, 4), (0, 0)),
        (256, (4, 4), (0, 0)),
    ]
    (dense,) = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert (dense.in_features, dense.out_features) == (256 * 6 * 6, 4096)
    # the paper's 38,951,745 parameters, less its last layer (4097) and with biases kept
    assert sum(p.numel() for p in net.parameters()) == 38_951_745 - 4097
    out = net(torch.rand(2, 1, 105, 105))
    assert out.shape == (2, 4096) and out.min() > 0 and out.max() < 1  # the sigmoid layer


@pytest.mark.parametrize(
    ("size", "kernels", "side", "units"),
    [
        (16, [3, 3, 3, 3], 1, 114),
        (28, [3, 3, 3, 3], 2, 455),
        (32, [3, 3, 3, 3], 2, 455),
        (48, [5, 3, 3, 3], 4, 1820),
        (64, [6, 4, 3, 3], 5, 2844),
        (105, list(PAPER), 6, 4096),
        (128, list(PAPER), 8, 4096),
    ],
)
def test_the_backbone_scales_below_105_px(size, kernels, side, units):
    layers, got_side = koch_layers(size, PAPER)
    assert [k for k, _, _ in layers] == kernels and got_side == side
    net = Koch(1, size, (4, 4, 4, 8), PAPER, 4096, BatchNorm())
    (dense,) = [m for m in net.modules() if isinstance(m, nn.Linear)]
    # the sigmoid layer keeps the paper's ratio of inputs (256 · 6 · 6) to units (4096)
    assert (dense.in_features, dense.out_features) == (8 * side * side, units)
    assert net(torch.rand(3, 1, size, size)).shape == (3, units) == (3, net.out_features)


def test_bad_backbone_arguments_name_the_argument():
    with pytest.raises(ArgumentError, match=r"^kernels needs one size > 0 per width \(4\)"):
        Koch(1, 32, (4, 4, 4, 8), (10, 7, 4), 16, NoNorm())
    with pytest.raises(ArgumentError, match="^features must be an integer >= 1"):
        Koch(1, 32, (4, 4, 4, 8), PAPER, 0, NoNorm())


def koch_loss(weight, bias) -> KochLoss:
    loss = KochLoss(embedding_dim=len(weight))
    with torch.no_grad():
        loss.head.linear.weight.copy_(torch.tensor([weight]))
        loss.head.linear.bias.fill_(bias)
    return loss


def test_the_pair_loss_by_hand():
    # p(same) = σ(−1·|Δ0| − 2·|Δ1| + 3)
    loss = koch_loss([-1.0, -2.0], 3.0)
    # a similar pair at Δ = (1, 1): logit 0, p = 1/2; a dissimilar one at Δ = (2, 0): logit 1
    emb = torch.tensor([[[0.0, 0.0], [1.0, -1.0]], [[0.0, 0.0], [-2.0, 0.0]]])
    labels = torch.tensor([[4, 4], [4, 7]])
    out = loss(emb, labels)
    similar = -math.log(0.5)
    dissimilar = -math.log(1 - 1 / (1 + math.exp(-1)))  # −log(1 − σ(1))
    assert out.loss.item() == pytest.approx((similar + dissimilar) / 2)
    assert out.parts["similar"].item() == pytest.approx(similar)
    assert out.parts["dissimilar"].item() == pytest.approx(dissimilar)
    # the head read as a distance: 1 − p(same) = σ(−logit)
    d = loss.pair_head()(emb[:, 0], emb[:, 1])
    assert d.tolist() == pytest.approx([0.5, 1 / (1 + math.exp(1))])
    with pytest.raises(ArgumentError, match="^embedding_dim must be an integer >= 1"):
        KochLoss(embedding_dim=0)


def test_only_a_loss_with_a_head_changes_how_pairs_are_scored(make_config):
    assert ContrastiveLoss().pair_head() is None
    _, module = build(make_config("loss=contrastive"))
    assert module.pair_scorer() is None
    _, module = build(make_config("loss=koch"))
    assert module.pair_scorer() is module.loss.head
    optimizer = module.configure_optimizers()["optimizer"]
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert all(id(p) in in_optimizer for p in module.loss.head.parameters())
    assert not any(n.startswith("loss.") for n, _ in module.encoder.named_parameters())


# Two classes: dimension 0 tells them apart, dimension 1 is large noise that the embedding
# distance follows, and a head looking at dimension 0 only does not.
EMBEDDINGS = torch.tensor([[0.0, 0.0], [0.0, 10.0], [1.0, 1.0], [1.0, 11.0]])
LABELS = torch.tensor([0, 0, 1, 1])
PAIRS = torch.tensor([[0, 1], [2, 3], [0, 2], [1, 3]])  # similar, similar, dissimilar, dissimilar


def test_verification_uses_the_heads_probability():
    head = koch_loss([-10.0, 0.0], 5.0).pair_head()
    scorer = Scorer(one_shot_ways=(), recall_ks=(1,))
    by_distance = scorer(EMBEDDINGS, LABELS, PAIRS)
    by_head = scorer(EMBEDDINGS, LABELS, PAIRS, pair_scorer=head)
    assert by_distance["auc"] == 0.0 and by_head["auc"] == 1.0
    d, same = scorer.pair_distances(EMBEDDINGS, LABELS, PAIRS, head)
    p_same = torch.sigmoid(torch.tensor([5.0, 5.0, -5.0, -5.0]))
    assert torch.allclose(d, 1 - p_same) and same.tolist() == [True, True, False, False]
    assert 1 - p_same[2] > by_head["threshold"] > 1 - p_same[0]  # d < τ: same
    assert by_head["p_at_1"] == by_distance["p_at_1"] == 0.0  # retrieval: embedding distance


@pytest.mark.parametrize(("k", "p_at_1"), [(None, 0.0), (1, 0.0), (2, 0.5), (3, 1.0)])
def test_rerank_k_reorders_each_querys_k_nearest_by_the_head(k, p_at_1):
    # each query's nearest is of the other class; its same-class sample is 2nd for samples 0
    # and 3, 3rd for samples 1 and 2
    head = koch_loss([-10.0, 0.0], 5.0).pair_head()
    scorer = Scorer(one_shot_ways=(), recall_ks=(1, 2), rerank_k=k)
    scores = scorer(EMBEDDINGS, LABELS, PAIRS, pair_scorer=head)
    assert scores["p_at_1"] == p_at_1
    # without a head there is nothing to re-rank with
    assert scorer(EMBEDDINGS, LABELS, PAIRS)["p_at_1"] == 0.0


def test_rerank_k_is_checked(make_config):
    with pytest.raises(ArgumentError, match="^rerank_k must be an integer >= 1, got 0"):
        Scorer(rerank_k=0)
    with pytest.raises(ValueError, match="^evaluation.rerank_k must be an integer >= 1"):
        build_scorer(make_config("evaluation.rerank_k=0"))


def test_score_split_scores_pairs_with_the_modules_head(make_config):
    datamodule, module = build(make_config("loss=koch", "evaluation.rerank_k=4"))
    split, pairs = datamodule.splits["val"], datamodule.pairs["val"]
    scorer = build_scorer(make_config("loss=koch", "evaluation.rerank_k=4"))
    scores, embeddings = score_split(module, split, pairs, scorer)
    head = module.loss.head
    assert scores == scorer(embeddings, split.labels, pairs, pair_scorer=head)
    assert scores != scorer(embeddings, split.labels, pairs)


def test_the_experiment_is_kochs(make_config):
    cfg = make_config("experiment=koch")
    datamodule, module = build(cfg)
    assert isinstance(module.encoder.backbone, Koch) and isinstance(module.loss, KochLoss)
    assert type(module).__name__ == "PairSiameseModule" and datamodule.tuple_size == 2
    aug = module.augment
    assert aug.hflip == 0 and aug.crop_scale == (1.0, 1.0)  # a mirrored character is another
    assert (aug.rotation, aug.shear, aug.scale, aug.translate) == (10.0, 0.3, (0.8, 1.2), 2.0)
    assert cfg.optimizer._target_ == "torch.optim.SGD" and cfg.optimizer.momentum == 0.9


def test_a_koch_checkpoint_and_its_export_verify_with_the_head(make_config, tmp_path):
    ckpt = save_run(make_config, tmp_path, "loss=koch", "backbone=mlp")
    reference = load_model(ckpt)
    a, b = write_pngs(tmp_path / "img", glyphs(2))
    with torch.no_grad():  # the PNGs hold these images losslessly
        fa, fb = reference.module.embed(glyphs(2))
        expected = float(reference.module.loss.head(fa, fb))
    d_ckpt, tau = verify(reference, a, b)
    assert d_ckpt == pytest.approx(expected, abs=1e-6)
    path, meta = export_checkpoint(ckpt, "torchscript")
    head = json.loads(meta.read_text())["pair_head"]
    assert head["kind"] == "weighted_l1" and len(head["weight"]) == 64
    d, t = verify(path, a, b)
    assert d == pytest.approx(d_ckpt, abs=1e-5) and t == pytest.approx(tau)
