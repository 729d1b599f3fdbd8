"""Training-batch augmentation on the device the batch lives on
(`augmentation=none|light|strong|affine`, each a YAML holding its values).

One call transforms a whole (B, T, C, H, W) uint8 batch: every image gets its own random resized
crop, horizontal flip, rotation, shear, scale and translation, folded into one affine sampling
grid (a single grid_sample), and its own brightness/contrast/saturation jitter. All parameters
are drawn from the generator passed in, so the run's seeded generator replays them exactly.
Never applied to val/test.

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
    `hflip`, a rotation uniform in ±`rotation` degrees; then Koch et al.'s affine distortion,
    each part drawn for x and y separately: a shear uniform in ±`shear` in both directions
    (x += ρx·y, y += ρy·x, in pixels about the centre), a scale uniform in `scale` ([low, high]),
    a translation uniform in ±`translate` pixels (positive: right and down); and
    brightness/contrast/saturation factors uniform in [1 − x, 1 + x] (saturation is skipped for
    1-channel images). The values live in src/siamese/conf/augmentation/*.yaml; all at their
    neutral values it does nothing.

    Each call draws torch.rand(n, 9) for n images, and torch.rand(n, 6) more only while shear,
    scale or translate is active, so the options without them draw as they always did."""

    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float]
    hflip: float
    rotation: float
    shear: float
    scale: tuple[float, float]
    translate: float
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
        if self.shear:  # |ρx·ρy| < 1: the map stays invertible
            in_range("shear", self.shear, 0, 1, closed=False)
        self.scale = _pair("scale", self.scale)
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ArgumentError("scale", f"must satisfy 0 < low <= high, got {list(self.scale)}")
        non_negative("translate", self.translate)
        for key in ("brightness", "contrast", "saturation"):
            if getattr(self, key) != 0:  # a factor 1 − x must stay positive
                in_range(key, getattr(self, key), 0, 1, closed=False)

    @cached_property  # read on every training batch: built once
    def active(self) -> bool:
        return (
            self.crop_scale != (1.0, 1.0)
            or self.crop_ratio != (1.0, 1.0)
            or self.hflip > 0
            or self.affine
            or any(
                getattr(self, k) > 0 for k in ("rotation", "brightness", "contrast", "saturation")
            )
        )

    @cached_property
    def affine(self) -> bool:
        """Whether Koch's shear, scale or translation is on (and draws its own numbers)."""
        return self.shear > 0 or self.scale != (1.0, 1.0) or self.translate > 0

    def replay(self, generator: torch.Generator, images: Tensor, batches: int) -> None:
        """Draw what `batches` calls on batches shaped like `images` would have drawn."""
        if not self.active:
            return
        n = images.shape[:-3].numel()
        for _ in range(batches):
            self._draw(n, generator)

    def _draw(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        u = torch.rand(n, 9, generator=generator, device=generator.device)
        if not self.affine:
            return u, None
        return u, torch.rand(n, 6, generator=generator, device=generator.device)

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
        u, v = self._draw(x.shape[0], generator)
        u = u.to(x.device)
        x = self._geometry(x, u[:, :6], v.to(x.device) if v is not None else None)
        x = self._colour(x, u[:, 6:])
        return x.round_().clamp_(0, 255).to(torch.uint8).reshape(shape)

    def _geometry(self, x: Tensor, u: Tensor, v: Tensor | None) -> Tensor:
        if (
            v is None
            and self.crop_scale == (1.0, 1.0)
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
        if v is not None:  # then Koch's affine: sample at the old map of its inverse
            inverse, shift = self._koch_inverse(v, *x.shape[-2:])
            matrix = theta[:, :, :2] @ inverse
            theta = torch.cat([matrix, theta[:, :, 2:] + matrix @ shift.unsqueeze(-1)], 2)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _koch_inverse(self, v: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
        """(A⁻¹ (n, 2, 2), −t (n, 2)) of the forward map p ↦ A·p + t, A = scale · shear, in
        affine_grid's coordinates (x and y each −1..1 across the image), from 6 uniforms each."""
        (s0, s1), rho = self.scale, self.shear
        sx, sy = s0 + (s1 - s0) * v[:, 0], s0 + (s1 - s0) * v[:, 1]
        # shears in pixels, in coordinates whose unit is half the image's width (x) or height (y)
        rx = rho * (2 * v[:, 2] - 1) * (height / width)
        ry = rho * (2 * v[:, 3] - 1) * (width / height)
        det = sx * sy * (1 - rx * ry)
        inverse = torch.stack(
            [torch.stack([sy, -sx * rx], 1), torch.stack([-sy * ry, sx], 1)], 1
        ) / det.view(-1, 1, 1)
        t = self.translate * (2 * v[:, 4:6] - 1) * v.new_tensor([2 / width, 2 / height])
        return inverse, -t

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
