"""A data set held as tensors: one uint8 image tensor (or its streaming stand-in) and labels."""

from dataclasses import dataclass

import torch
from torch import Tensor

from siamese.data.lazy import LazyImages

# codes of ImageSet.split: the split a sample is given to, or FREE (split by data.split_by)
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
FREE = -1


@dataclass
class ImageSet:
    images: Tensor | LazyImages  # (N, C, H, W) uint8; LazyImages decodes on indexing (streaming)
    labels: Tensor  # (N,) int64, 0..len(class_names)-1
    class_names: list[str]
    split: Tensor | None = None  # (N,) int64 SPLIT_CODES or FREE; None: every sample FREE
    # (N, 2) bool: is_query, is_gallery (a manifest's columns: the test split is then scored as
    # queries against the gallery); None: no roles
    roles: Tensor | None = None

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
        if self.split is not None and self.split.shape != self.labels.shape:
            raise ValueError(
                f"split must have shape {tuple(self.labels.shape)}, got {tuple(self.split.shape)}"
            )
        if self.roles is not None and self.roles.shape != (len(self.labels), 2):
            raise ValueError(
                f"roles must have shape ({len(self.labels)}, 2), got {tuple(self.roles.shape)}"
            )

    def __len__(self) -> int:
        return self.labels.numel()

    @property
    def streaming(self) -> bool:
        return isinstance(self.images, LazyImages)

    def subset(self, index: Tensor) -> "ImageSet":
        """The samples at `index`, labels renumbered 0..C'-1 in class order (for per-split heads)."""
        kept, labels = torch.unique(self.labels[index], return_inverse=True)
        names = [self.class_names[i] for i in kept.tolist()]
        images = self.images.subset(index) if self.streaming else self.images[index]
        split = None if self.split is None else self.split[index]
        roles = None if self.roles is None else self.roles[index]
        return ImageSet(images, labels, names, split=split, roles=roles)


def pixel_stats(images: Tensor | LazyImages, max_samples: int = 20_000) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std in [0, 1]; streaming sets use up to `max_samples` evenly spaced
    images (fixed, so every run gets the same statistics)."""
    n = images.shape[0]
    if isinstance(images, LazyImages) and n > max_samples:
        images = images[torch.linspace(0, n - 1, max_samples).long()]
    elif isinstance(images, LazyImages):
        images = images.materialize()
    x = images.float().div_(255).transpose(0, 1).flatten(1)
    return x.mean(1), x.std(1).clamp_min(1e-3)
