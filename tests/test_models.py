"""Backbones, the normalization choice, and the weight-sharing invariant."""

import pytest
import torch
from torch import nn

from siamese.models.backbones import MLP, ConvNet, Koch, ResNet18, TwoBranch
from siamese.models.encoder import Encoder
from siamese.models.normalization import BatchNorm, GroupNorm, LayerNorm, NoNorm

NORMALIZATIONS = {
    "batchnorm": BatchNorm(),
    "layernorm": LayerNorm(),
    "groupnorm": GroupNorm(max_groups=8),
    "none": NoNorm(),
}
BACKBONES = {
    "convnet": lambda norm: ConvNet(3, (8, 16), norm),
    "mlp": lambda norm: MLP(3 * 16 * 16, (32, 16), ("sigmoid", "tanh"), norm),
    "two_branch": lambda norm: TwoBranch(3, (8, 16), 16, 32, norm),
    "resnet18": lambda norm: ResNet18(3, None, False, norm),
    "koch": lambda norm: Koch(3, 16, (8, 8, 8, 16), (10, 7, 4, 4), 32, norm),
}
NORM_TYPES = {
    "batchnorm": (nn.BatchNorm1d, nn.BatchNorm2d),
    "layernorm": (nn.LayerNorm, nn.GroupNorm),
    "groupnorm": (nn.GroupNorm,),
    "none": (),
}


@pytest.mark.parametrize("norm", NORMALIZATIONS)
@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_backbone_honours_the_normalization(name, norm):
    backbone = BACKBONES[name](NORMALIZATIONS[norm])
    x = torch.rand(4, 3, 16, 16)
    assert backbone(x).shape == (4, backbone.out_features)
    norms = [
        m
        for m in backbone.modules()
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm))
    ]
    if norm == "none":
        assert norms == []
    else:
        assert norms and all(isinstance(m, NORM_TYPES[norm]) for m in norms)
        if norm == "layernorm":  # over all of C, H, W for feature maps
            assert all(m.num_groups == 1 for m in norms if isinstance(m, nn.GroupNorm))


def test_mlp_is_sigmoid_then_tanh():
    mlp = MLP(12, (8, 4), ("sigmoid", "tanh"), BatchNorm())
    acts = [type(m) for m in mlp.modules() if isinstance(m, (nn.Sigmoid, nn.Tanh))]
    assert acts == [nn.Sigmoid, nn.Tanh]
    with pytest.raises(ValueError, match="activations\\[0\\] must be one of"):
        MLP(12, (8, 4), ("swish", "tanh"), BatchNorm())


def test_two_branch_sees_colour_that_the_spatial_branch_cannot():
    torch.manual_seed(0)
    net = TwoBranch(3, (8, 16), 16, 32, NoNorm()).eval()
    seen = []
    net.spatial.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    x = torch.rand(1, 3, 16, 16)
    swapped = x[:, [1, 2, 0]]  # same luminance, other colours
    out, out_swapped = net(x), net(swapped)
    assert seen[0].shape == (1, 1, 16, 16)  # the spatial branch gets luminance only
    assert torch.allclose(seen[0], seen[1])
    assert not torch.allclose(out, out_swapped)  # the colour branch tells them apart


def test_l2_normalized_embeddings_lie_on_the_unit_sphere():
    enc = Encoder(ConvNet(3, (8,), NoNorm()), 5, l2_normalize=True)
    norms = enc(torch.rand(6, 3, 16, 16)).norm(dim=1)
    assert torch.allclose(norms, torch.ones(6), atol=1e-5)


def test_pretrained_resnet_offline_fails_clearly():
    with pytest.raises(RuntimeError, match="backbone.weights='NOT_A_WEIGHTS_NAME'"):
        ResNet18(3, "NOT_A_WEIGHTS_NAME", False, BatchNorm())


def test_distance_matrix_stays_float32_under_bf16_autocast():
    from siamese.core.distances import distance_matrix

    torch.manual_seed(0)
    x = torch.randn(64, 32) * 3 + 5  # large norms: the expanded form cancels in bf16
    exact = torch.cdist(x.double(), x.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = distance_matrix(x, x)
    assert d.dtype == torch.float32
    assert (d.double() - exact).abs().max() < 0.1
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what it would be without the guard
        xb = x @ x.T
    naive = (x.pow(2).sum(1, keepdim=True) + x.pow(2).sum(1) - 2 * xb.float()).clamp_min(0).sqrt()
    assert (naive.double() - exact).abs().max() > 0.5
