"""The `normalization=` choice, applied inside every backbone's hidden layers."""

from torch import nn

NORMALIZATIONS = ("batchnorm", "layernorm", "groupnorm", "none")


def check_normalization(kind: str) -> None:
    if kind not in NORMALIZATIONS:
        raise ValueError(f"normalization.layer must be one of {NORMALIZATIONS}, got {kind!r}")


def norm2d(kind: str, channels: int) -> nn.Module:
    """Normalization for (N, C, H, W) feature maps; layernorm normalises over C, H and W."""
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    if kind == "layernorm":
        return nn.GroupNorm(1, channels)
    if kind == "groupnorm":
        return nn.GroupNorm(_groups(channels), channels)
    return nn.Identity()


def norm1d(kind: str, features: int) -> nn.Module:
    """Normalization for (N, F) features."""
    if kind == "batchnorm":
        return nn.BatchNorm1d(features)
    if kind == "layernorm":
        return nn.LayerNorm(features)
    if kind == "groupnorm":
        return nn.GroupNorm(_groups(features), features)
    return nn.Identity()


def _groups(channels: int) -> int:
    # the largest of 8, 4, 2, 1 that divides the channels (GroupNorm needs an exact split)
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)
