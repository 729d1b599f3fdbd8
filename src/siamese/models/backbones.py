"""Backbones (`backbone=`): image (N, C, H, W) float → feature vector (N, out_features)."""

import torch
from torch import Tensor, nn

from siamese.models.normalization import check_normalization, norm1d, norm2d

_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


def _activation(name: str, key: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"backbone.{key} must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]()


def conv_block(cin: int, cout: int, norm: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=norm == "none"), norm2d(norm, cout), nn.ReLU()
    )


class ConvNet(nn.Module):
    """A small CNN for 28–64 px images: conv blocks, each halving the resolution, then global pooling."""

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, ...] = (32, 64, 128),
        normalization: str = "batchnorm",
    ):
        super().__init__()
        check_normalization(normalization)
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be at least 1 width, each > 0, got {list(widths)}")
        layers, cin = [], in_channels
        for i, width in enumerate(widths):
            layers += [conv_block(cin, width, normalization)]
            layers += [nn.MaxPool2d(2) if i < len(widths) - 1 else nn.AdaptiveAvgPool2d(1)]
            cin = width
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.out_features = cin

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


class MLP(nn.Module):
    """The two-layer topology of the original description, on flattened input."""

    def __init__(
        self,
        in_features: int,
        hidden: tuple[int, int] = (256, 128),
        activations: tuple[str, str] = ("sigmoid", "tanh"),
        normalization: str = "batchnorm",
    ):
        super().__init__()
        check_normalization(normalization)
        if len(hidden) != 2 or len(activations) != 2:
            raise ValueError(
                f"backbone.hidden and backbone.activations need 2 entries each, got "
                f"{list(hidden)} and {list(activations)}"
            )
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden[0]),
            norm1d(normalization, hidden[0]),
            _activation(activations[0], "activations[0]"),
            nn.Linear(hidden[0], hidden[1]),
            norm1d(normalization, hidden[1]),
            _activation(activations[1], "activations[1]"),
        )
        self.out_features = hidden[1]

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class TwoBranch(nn.Module):
    """The SPRN architecture: a spatial branch (a ConvNet over luminance: shape and position) and
    a colour branch (a two-layer network over per-channel colour statistics), fused by a third
    layer into the ranking embedding's features."""

    def __init__(
        self,
        in_channels: int = 3,
        spatial_widths: tuple[int, ...] = (32, 64, 128),
        colour_hidden: int = 64,
        fused: int = 128,
        normalization: str = "batchnorm",
    ):
        super().__init__()
        check_normalization(normalization)
        if not spatial_widths:
            raise ValueError("backbone.spatial_widths needs at least 1 entry")
        self.spatial = ConvNet(1, tuple(spatial_widths), normalization)
        stats = 4 * in_channels  # per channel: mean, std, min, max
        self.colour = nn.Sequential(
            nn.Linear(stats, colour_hidden),
            norm1d(normalization, colour_hidden),
            nn.ReLU(),
            nn.Linear(colour_hidden, colour_hidden),
            norm1d(normalization, colour_hidden),
            nn.ReLU(),
        )
        self.fuse = nn.Sequential(
            nn.Linear(self.spatial.out_features + colour_hidden, fused),
            norm1d(normalization, fused),
            nn.ReLU(),
        )
        self.out_features = fused

    def forward(self, x: Tensor) -> Tensor:
        luminance = x.mean(1, keepdim=True)
        flat = x.flatten(2)
        stats = torch.cat([flat.mean(2), flat.std(2), flat.amin(2), flat.amax(2)], 1)
        return self.fuse(torch.cat([self.spatial(luminance), self.colour(stats)], 1))


class ResNet18(nn.Module):
    """torchvision's ResNet-18 adapted to small images: a 3×3 stem without the first max-pool."""

    def __init__(
        self, in_channels: int = 3, weights: str | None = None, normalization: str = "batchnorm"
    ):
        super().__init__()
        check_normalization(normalization)
        from torchvision.models import resnet18

        try:
            net = resnet18(weights=weights, norm_layer=lambda c: norm2d(normalization, c))
        except Exception as err:  # offline, or an unknown weights name
            raise RuntimeError(
                f"backbone.weights={weights!r} could not be loaded ({err}); use weights: null to "
                "train from scratch, or put the file into torch's hub cache (TORCH_HOME)"
            ) from err
        net.conv1 = nn.Conv2d(in_channels, 64, 3, padding=1, bias=False)
        net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.net = net
        self.out_features = 512

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
