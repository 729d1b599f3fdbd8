"""The `normalization=` choice: the layer every backbone puts after its hidden layers.

Each option of src/siamese/conf/normalization/ builds one of these; the backbone asks it for a layer per
hidden layer (`layer2d` after a convolution, `layer1d` after a linear layer).
"""

from torch import nn

from siamese.core.errors import at_least


class Normalization:
    """A normalization that removes a preceding layer's bias (`replaces_bias`) makes that bias
    redundant: the convolutions before it go without one."""

    replaces_bias = True

    def layer2d(self, channels: int) -> nn.Module:
        raise NotImplementedError

    def layer1d(self, features: int) -> nn.Module:
        raise NotImplementedError


class BatchNorm(Normalization):
    def layer2d(self, channels: int) -> nn.Module:
        return nn.BatchNorm2d(channels)

    def layer1d(self, features: int) -> nn.Module:
        return nn.BatchNorm1d(features)


class LayerNorm(Normalization):
    """Over all of a sample's features: for feature maps, over C, H and W."""

    def layer2d(self, channels: int) -> nn.Module:
        return nn.GroupNorm(1, channels)

    def layer1d(self, features: int) -> nn.Module:
        return nn.LayerNorm(features)


class GroupNorm(Normalization):
    """Channels in groups: the first of max_groups, max_groups // 2, ..., 1 that divides them
    (GroupNorm needs an exact split)."""

    def __init__(self, max_groups: int):
        self.max_groups = at_least("max_groups", max_groups, 1)

    def groups(self, channels: int) -> int:
        g = self.max_groups
        while g > 1 and channels % g:
            g //= 2
        return g if channels % g == 0 else 1

    def layer2d(self, channels: int) -> nn.Module:
        return nn.GroupNorm(self.groups(channels), channels)

    def layer1d(self, features: int) -> nn.Module:
        return nn.GroupNorm(self.groups(features), features)


class NoNorm(Normalization):
    replaces_bias = False

    def layer2d(self, channels: int) -> nn.Module:
        return nn.Identity()

    def layer1d(self, features: int) -> nn.Module:
        return nn.Identity()
