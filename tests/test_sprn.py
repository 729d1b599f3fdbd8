"""SPRN as its description defines it: the squared hinge on plain distances, and the two-branch
backbone on one-channel images."""

import pytest
import torch

from siamese.models.backbones import TwoBranch
from siamese.models.normalization import NoNorm
from siamese.run.build import build
from tests.test_losses import TRIPLET_LABELS, TRIPLETS


def test_sprn_trains_the_descriptions_loss(make_config):
    cfg = make_config("experiment=sprn")
    assert not cfg.loss.squared_distance and cfg.loss.squared_hinge
    _, module = build(cfg)
    module.loss.margin = 1.5
    # max(0, d(a,p) − d(a,n) + m)² on plain distances: d(a,p), d(a,n) = (1, 2) and (2, 1)
    out = module.loss(TRIPLETS, TRIPLET_LABELS)
    assert out.loss.item() == pytest.approx((0.5**2 + 2.5**2) / 2)


def test_the_colour_branch_of_a_grey_image_sees_the_grey_statistics():
    torch.manual_seed(0)
    net = TwoBranch(1, (8, 16), 16, 32, NoNorm()).eval()
    seen = {}
    net.spatial.register_forward_hook(lambda m, args, out: seen.update(spatial=args[0]))
    net.colour.register_forward_hook(lambda m, args, out: seen.update(colour=args[0]))
    x = torch.rand(3, 1, 16, 16)
    assert net(x).shape == (3, 32)
    assert torch.equal(seen["spatial"], x)  # the luminance of one channel is the channel
    grey = x.flatten(1)
    stats = torch.stack([grey.mean(1), grey.std(1), grey.amin(1), grey.amax(1)], 1)
    assert torch.allclose(seen["colour"], stats)


def test_sprn_on_one_channel_images_learns_through_both_branches(make_config):
    datamodule, module = build(make_config("experiment=sprn", "data.channels=1"))
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["images"].shape[-3] == 1
    out = module.loss(module.embed(batch["images"]), batch["labels"])
    assert torch.isfinite(out.loss)
    out.loss.backward()
    backbone = module.encoder.backbone
    for branch in (backbone.spatial, backbone.colour):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in branch.parameters())
