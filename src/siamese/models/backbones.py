"""Backbones (`backbone=`): image (N, C, H, W) float → feature vector (N, out_features)."""

import torch
from torch import Tensor, nn

from siamese.core.errors import ArgumentError, UserError, at_least
from siamese.models.normalization import BatchNorm, Normalization

_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


def _activation(name: str, key: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ArgumentError(key, f"must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]()


def conv_block(cin: int, cout: int, norm: Normalization) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, 3, padding=1, bias=not norm.replaces_bias)
    return nn.Sequential(conv, norm.layer2d(cout), nn.ReLU())


class ConvNet(nn.Module):
    """A small CNN for 28–64 px images: conv blocks, each halving the resolution, then global pooling."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], normalization: Normalization):
        super().__init__()
        at_least("in_channels", in_channels, 1)
        if not widths or min(widths) < 1:
            raise ArgumentError("widths", f"must be at least 1 width, each > 0, got {list(widths)}")
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
        hidden: tuple[int, int],
        activations: tuple[str, str],
        normalization: Normalization,
    ):
        super().__init__()
        for name, value in (("hidden", hidden), ("activations", activations)):
            if len(value) != 2:
                raise ArgumentError(name, f"needs 2 entries, got {list(value)}")
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden[0]),
            normalization.layer1d(hidden[0]),
            _activation(activations[0], "activations[0]"),
            nn.Linear(hidden[0], hidden[1]),
            normalization.layer1d(hidden[1]),
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
        in_channels: int,
        spatial_widths: tuple[int, ...],
        colour_hidden: int,
        fused: int,
        normalization: Normalization,
    ):
        super().__init__()
        if not spatial_widths:
            raise ArgumentError("spatial_widths", "needs at least 1 entry")
        self.spatial = ConvNet(1, tuple(spatial_widths), normalization)
        stats = 4 * in_channels  # per channel: mean, std, min, max
        self.colour = nn.Sequential(
            nn.Linear(stats, colour_hidden),
            normalization.layer1d(colour_hidden),
            nn.ReLU(),
            nn.Linear(colour_hidden, colour_hidden),
            normalization.layer1d(colour_hidden),
            nn.ReLU(),
        )
        self.fuse = nn.Sequential(
            nn.Linear(self.spatial.out_features + colour_hidden, fused),
            normalization.layer1d(fused),
            nn.ReLU(),
        )
        self.out_features = fused

    def forward(self, x: Tensor) -> Tensor:
        luminance = x.mean(1, keepdim=True)
        flat = x.flatten(2)
        stats = torch.cat([flat.mean(2), flat.std(2), flat.amin(2), flat.amax(2)], 1)
        return self.fuse(torch.cat([self.spatial(luminance), self.colour(stats)], 1))


class ResNet18(nn.Module):
    """torchvision's ResNet-18 adapted to small images: a 3×3 stem without the first max-pool.

    `pretrained=True` (or `weights="IMAGENET1K_V1"`, any torchvision ResNet18_Weights name) loads
    the weights from torch's hub cache only; nothing is downloaded, so offline it fails at once
    with the file's expected path. The new 3×3 stem is always trained from scratch. With weights,
    `input_mean`/`input_std` hold the normalisation they were trained with (ImageNet's; for
    in_channels=1 its channel average), to use instead of the data's pixel statistics; without
    weights both are None."""

    def __init__(
        self,
        in_channels: int,
        weights: str | None,
        pretrained: bool,
        normalization: Normalization,
    ):
        super().__init__()
        from torchvision.models import resnet18

        if pretrained and weights is None:
            weights = "IMAGENET1K_V1"
        net = resnet18(weights=None, norm_layer=normalization.layer2d)
        self.input_mean: tuple[float, ...] | None = None
        self.input_std: tuple[float, ...] | None = None
        if weights is not None:
            if not isinstance(normalization, BatchNorm):
                raise ArgumentError(
                    "weights",
                    f"={weights!r} holds batch-norm layers; use normalization=batchnorm with "
                    f"them, not {type(normalization).__name__}",
                )
            state, mean, std = _cached_resnet18_weights(weights)
            net.load_state_dict(state)
            if in_channels != 3:  # grey input: the channel average of the RGB statistics
                mean, std = [sum(mean) / 3] * in_channels, [sum(std) / 3] * in_channels
            self.input_mean, self.input_std = tuple(mean), tuple(std)
        net.conv1 = nn.Conv2d(in_channels, 64, 3, padding=1, bias=False)
        net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.net = net
        self.out_features = 512

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class WeightsError(UserError, RuntimeError):
    """Pretrained weights that cannot be had offline; the message says how to fetch them."""


def resnet18_weights_path(weights: str = "IMAGENET1K_V1"):
    """Where torch's hub cache keeps the file of these weights ($TORCH_HOME/hub/checkpoints)."""
    from pathlib import Path

    from torchvision.models import ResNet18_Weights

    try:
        w = ResNet18_Weights[weights]
    except KeyError:
        raise WeightsError(
            f"backbone.weights={weights!r} is not a torchvision ResNet18_Weights name; use one of "
            f"{[m.name for m in ResNet18_Weights]} or null to train from scratch"
        ) from None
    return w, Path(torch.hub.get_dir()) / "checkpoints" / Path(w.url).name


def _cached_resnet18_weights(weights: str):
    w, path = resnet18_weights_path(weights)
    if not path.is_file():
        raise WeightsError(
            f"backbone.weights={weights!r}: the file {path} is not in torch's hub cache and is "
            f"never downloaded during a run. Fetch it where the network is reachable, e.g. "
            f"`python -c \"import torchvision; torchvision.models.resnet18(weights='{weights}')\"` "
            f"(or download {w.url} to that path; $TORCH_HOME moves the cache), or use "
            "backbone.pretrained=false"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsError(
            f"backbone.weights={weights!r}: cannot read {path} ({err}); delete it and fetch it again"
        ) from err
    t = w.transforms()
    return state, t.mean, t.std
