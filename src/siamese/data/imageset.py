"""A data set held in memory as tensors: one uint8 image tensor and one label tensor."""

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class ImageSet:
    images: Tensor  # (N, C, H, W) uint8
    labels: Tensor  # (N,) int64, 0..len(class_names)-1
    class_names: list[str]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be a (N, C, H, W) uint8 tensor, got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels must have shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return self.labels.numel()

    def subset(self, index: Tensor) -> "ImageSet":
        """The samples at `index`, labels renumbered 0..C'-1 in class order (for per-split heads)."""
        kept, labels = torch.unique(self.labels[index], return_inverse=True)
        names = [self.class_names[i] for i in kept.tolist()]
        return ImageSet(images=self.images[index], labels=labels, class_names=names)
