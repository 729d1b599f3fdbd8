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


KOCH_IMAGE_SIZE, KOCH_SIDE = 105, 6  # the paper's input, and the side of its last map


def koch_layers(
    image_size: int, kernels: tuple[int, ...]
) -> tuple[list[tuple[int, int, bool]], int]:
    """Per convolution (kernel, padding, pooled after), and the side of the last map: Koch's
    layout at any image size.

    Kernels are scaled by image_size / 105 (rounded, never below 3 nor above the given kernel);
    a convolution is valid (no padding, as in the paper) while the map is at least twice its
    kernel, else padded by kernel // 2 so that the map keeps its side; a 2×2 max-pool follows each
    but the last while the map is at least 2. At 105 px this is the paper's 10, 7, 4, 4 valid
    convolutions ending on 6×6; at 64 px 6, 4, 3, 3 ending on 5×5; at 48 px 5, 3, 3, 3 on 4×4;
    at 28 or 32 px 3, 3, 3, 3 on 2×2; at 16 px 1×1."""
    scale = min(image_size, KOCH_IMAGE_SIZE) / KOCH_IMAGE_SIZE
    side, layers = image_size, []
    for i, kernel in enumerate(kernels):
        k = min(kernel, max(3, round(kernel * scale)))
        padding = 0 if side >= 2 * k else k // 2
        side += 2 * padding - k + 1
        pool = i < len(kernels) - 1 and side >= 2
        side = side // 2 if pool else side
        layers.append((k, padding, pool))
    return layers, side


class Koch(nn.Module):
    """The convolutional network of Koch, Zemel, Salakhutdinov 2015 ("Siamese Neural Networks for
    One-shot Image Recognition"): convolutions of `widths` channels (64@10×10, 128@7×7,
    128@4×4, 256@4×4), each followed by its normalization and a ReLU, a 2×2 max-pool after each
    but the last; then a fully connected sigmoid layer, the paper's embedding, which this
    backbone returns (`out_features`). The Encoder then maps it linearly to `embedding.dim`, as
    for every backbone. Below 105 px the kernels and paddings are scaled as `koch_layers` says,
    and the sigmoid layer with the last map's area: `features` (4096) units on the paper's 6×6
    map, features · side² / 36 on a smaller one (455 on the 2×2 map of 28 or 32 px, 1820 on the
    4×4 of 48 px), so that it keeps the paper's ratio of inputs to units."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        widths: tuple[int, ...],
        kernels: tuple[int, ...],
        features: int,
        normalization: Normalization,
    ):
        super().__init__()
        at_least("in_channels", in_channels, 1)
        at_least("image_size", image_size, 1)
        at_least("features", features, 1)
        if not widths or min(widths) < 1:
            raise ArgumentError("widths", f"must be at least 1 width, each > 0, got {list(widths)}")
        if len(kernels) != len(widths) or min(kernels) < 1:
            raise ArgumentError(
                "kernels", f"needs one size > 0 per width ({len(widths)}), got {list(kernels)}"
            )
        layers, side = koch_layers(image_size, tuple(kernels))
        units = min(features, max(1, round(features * side**2 / KOCH_SIDE**2)))
        blocks, cin = [], in_channels
        for width, (k, padding, pool) in zip(widths, layers, strict=True):
            conv = nn.Conv2d(cin, width, k, padding=padding, bias=not normalization.replaces_bias)
            blocks += [conv, normalization.layer2d(width), nn.ReLU()]
            blocks += [nn.MaxPool2d(2)] if pool else []
            cin = width
        self.features = nn.Sequential(
            *blocks,
            nn.Flatten(),
            nn.Linear(cin * side * side, units),
            normalization.layer1d(units),
            nn.Sigmoid(),
        )
        self.out_features = units

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


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
