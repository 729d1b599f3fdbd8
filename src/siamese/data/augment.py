"""Training-batch augmentation on the device the batch lives on (`augmentation=none|light|strong`,
each a YAML holding its values).

One call transforms a whole (B, T, C, H, W) uint8 batch: every image gets its own random resized
crop, horizontal flip and rotation, folded into one affine sampling grid (a single grid_sample),
and its own brightness/contrast/saturation jitter. All parameters are drawn from the generator
passed in, so the run's seeded generator replays them exactly. Never applied to val/test.

torchvision.transforms.v2 draws one set of parameters per call (the same crop for the whole
batch); per-sample parameters need the batched affine grid used here.
"""

import math
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor

from siamese.core.errors import ArgumentError, in_range, non_negative


@dataclass
class Augmentation:
    """Per image: a random resized crop (`crop_scale`: its area as a fraction of the image,
    `crop_ratio`: its aspect ratio, each a [low, high] range), a horizontal flip with probability
    `hflip`, a rotation uniform in ±`rotation` degrees, and brightness/contrast/saturation factors
    uniform in [1 − x, 1 + x] (saturation is skipped for 1-channel images). The values live in
    src/siamese/conf/augmentation/*.yaml; all at their neutral values it does nothing."""

    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float]
    hflip: float
    rotation: float
    brightness: float
    contrast: float
    saturation: float

    def __post_init__(self) -> None:
        self.crop_scale = _pair("crop_scale", self.crop_scale)
        self.crop_ratio = _pair("crop_ratio", self.crop_ratio)
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ArgumentError("crop_scale", f"must satisfy 0 < low <= high <= 1, got {[lo, hi]}")
        r0, r1 = self.crop_ratio
        if not 0 < r0 <= r1:
            raise ArgumentError("crop_ratio", f"must satisfy 0 < low <= high, got {[r0, r1]}")
        in_range("hflip", self.hflip, 0, 1)
        non_negative("rotation", self.rotation)
        for key in ("brightness", "contrast", "saturation"):
            if getattr(self, key) != 0:  # a factor 1 − x must stay positive
                in_range(key, getattr(self, key), 0, 1, closed=False)

    @cached_property  # read on every training batch: built once
    def active(self) -> bool:
        return (
            self.crop_scale != (1.0, 1.0)
            or self.crop_ratio != (1.0, 1.0)
            or self.hflip > 0
            or any(
                getattr(self, k) > 0 for k in ("rotation", "brightness", "contrast", "saturation")
            )
        )

    def replay(self, generator: torch.Generator, images: Tensor, batches: int) -> None:
        """Draw what `batches` calls on batches shaped like `images` would have drawn."""
        if not self.active:
            return
        n = images.shape[:-3].numel()
        for _ in range(batches):
            torch.rand(n, 9, generator=generator, device=generator.device)

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """(..., C, H, W) uint8 on any device -> the same shape, uint8, augmented per image."""
        if not self.active:
            return images
        if images.dtype != torch.uint8 or images.dim() < 4:
            raise ValueError(
                f"augment expects (..., C, H, W) uint8, got {images.dtype} {tuple(images.shape)}"
            )
        shape = images.shape
        x = images.reshape(-1, *shape[-3:]).float()
        n, c = x.shape[:2]
        u = torch.rand(n, 9, generator=generator, device=generator.device).to(x.device)
        x = self._geometry(x, u[:, :6])
        x = self._colour(x, u[:, 6:])
        return x.round_().clamp_(0, 255).to(torch.uint8).reshape(shape)

    def _geometry(self, x: Tensor, u: Tensor) -> Tensor:
        if (
            self.crop_scale == (1.0, 1.0)
            and self.crop_ratio == (1.0, 1.0)
            and not self.hflip
            and not self.rotation
        ):
            return x
        (s0, s1), (r0, r1) = self.crop_scale, self.crop_ratio
        area = s0 + (s1 - s0) * u[:, 0]
        ratio = torch.exp(math.log(r0) + (math.log(r1) - math.log(r0)) * u[:, 1])
        w = torch.sqrt(area * ratio).clamp(max=1.0)  # crop width and height, fractions of the image
        h = torch.sqrt(area / ratio).clamp(max=1.0)
        # the crop centre anywhere that keeps the crop inside the image (normalised coordinates)
        cx = (1 - w) * (2 * u[:, 2] - 1)
        cy = (1 - h) * (2 * u[:, 3] - 1)
        flip = torch.where(u[:, 4] < self.hflip, -1.0, 1.0)
        angle = math.radians(self.rotation) * (2 * u[:, 5] - 1)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack(
            [
                torch.stack([cos * w * flip, -sin * h, cx], 1),
                torch.stack([sin * w * flip, cos * h, cy], 1),
            ],
            1,
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _colour(self, x: Tensor, u: Tensor) -> Tensor:
        n, c = x.shape[:2]
        if self.brightness:
            x = x * (1 + self.brightness * (2 * u[:, 0] - 1)).view(n, 1, 1, 1)
        if self.contrast:
            grey = _grey(x).mean((1, 2, 3), keepdim=True)
            f = (1 + self.contrast * (2 * u[:, 1] - 1)).view(n, 1, 1, 1)
            x = grey + f * (x - grey)
        if self.saturation and c == 3:
            f = (1 + self.saturation * (2 * u[:, 2] - 1)).view(n, 1, 1, 1)
            grey = _grey(x)
            x = grey + f * (x - grey)
        return x.clamp(0, 255)


def _pair(name: str, value) -> tuple[float, float]:
    if len(value) != 2:
        raise ArgumentError(name, f"must be a [low, high] pair, got {list(value)}")
    return float(value[0]), float(value[1])


def _grey(x: Tensor) -> Tensor:
    if x.shape[1] == 1:
        return x
    w = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)
