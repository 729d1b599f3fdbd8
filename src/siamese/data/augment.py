"""Training-batch augmentation on the device the batch lives on (`augmentation=none|light|strong`).

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

PRESETS = {
    "none": {},
    "light": {
        "crop_scale": (0.8, 1.0),
        "hflip": 0.5,
        "brightness": 0.2,
        "contrast": 0.2,
        "saturation": 0.2,
    },
    "strong": {
        "crop_scale": (0.5, 1.0),
        "crop_ratio": (3 / 4, 4 / 3),
        "hflip": 0.5,
        "rotation": 15.0,
        "brightness": 0.4,
        "contrast": 0.4,
        "saturation": 0.4,
    },
}


@dataclass(frozen=True)
class Augmentation:
    """`kind` picks a preset; explicit parameters override it. `crop_scale`: area fraction range
    of the random resized crop; `crop_ratio`: its aspect-ratio range; `hflip`: flip probability;
    `rotation`: degrees, uniform ±; `brightness`/`contrast`/`saturation`: factors uniform in
    [1 - x, 1 + x] (saturation is skipped for 1-channel images)."""

    kind: str = "none"
    crop_scale: tuple[float, float] | None = None
    crop_ratio: tuple[float, float] | None = None
    hflip: float | None = None
    rotation: float | None = None
    brightness: float | None = None
    contrast: float | None = None
    saturation: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in PRESETS:
            raise ValueError(f"augmentation.kind must be one of {list(PRESETS)}, got {self.kind!r}")
        p = self.params
        lo, hi = p["crop_scale"]
        if not 0 < lo <= hi <= 1:
            raise ValueError(
                f"augmentation.crop_scale must satisfy 0 < lo <= hi <= 1, got {lo, hi}"
            )
        r0, r1 = p["crop_ratio"]
        if not 0 < r0 <= r1:
            raise ValueError(f"augmentation.crop_ratio must satisfy 0 < lo <= hi, got {r0, r1}")
        if not 0 <= p["hflip"] <= 1:
            raise ValueError(f"augmentation.hflip must be a probability, got {p['hflip']}")
        for key in ("rotation", "brightness", "contrast", "saturation"):
            if p[key] < 0 or (key != "rotation" and p[key] >= 1):
                raise ValueError(
                    f"augmentation.{key} must be in [0, 1) (rotation: >= 0), got {p[key]}"
                )

    @cached_property  # read on every training batch: built once
    def params(self) -> dict:
        base = {
            "crop_scale": (1.0, 1.0),
            "crop_ratio": (1.0, 1.0),
            "hflip": 0.0,
            "rotation": 0.0,
            "brightness": 0.0,
            "contrast": 0.0,
            "saturation": 0.0,
        }
        base.update(PRESETS[self.kind])
        for key in base:
            if getattr(self, key) is not None:
                base[key] = (
                    tuple(getattr(self, key)) if key.startswith("crop") else getattr(self, key)
                )
        return base

    @cached_property
    def active(self) -> bool:
        p = self.params
        return (
            p["crop_scale"] != (1.0, 1.0)
            or p["crop_ratio"] != (1.0, 1.0)
            or p["hflip"] > 0
            or any(p[k] > 0 for k in ("rotation", "brightness", "contrast", "saturation"))
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
        p = self.params
        u = torch.rand(n, 9, generator=generator, device=generator.device).to(x.device)
        x = self._geometry(x, u[:, :6], p)
        x = self._colour(x, u[:, 6:], p)
        return x.round_().clamp_(0, 255).to(torch.uint8).reshape(shape)

    @staticmethod
    def _geometry(x: Tensor, u: Tensor, p: dict) -> Tensor:
        if (
            p["crop_scale"] == (1.0, 1.0)
            and p["crop_ratio"] == (1.0, 1.0)
            and not p["hflip"]
            and not p["rotation"]
        ):
            return x
        (s0, s1), (r0, r1) = p["crop_scale"], p["crop_ratio"]
        area = s0 + (s1 - s0) * u[:, 0]
        ratio = torch.exp(math.log(r0) + (math.log(r1) - math.log(r0)) * u[:, 1])
        w = torch.sqrt(area * ratio).clamp(max=1.0)  # crop width and height, fractions of the image
        h = torch.sqrt(area / ratio).clamp(max=1.0)
        # the crop centre anywhere that keeps the crop inside the image (normalised coordinates)
        cx = (1 - w) * (2 * u[:, 2] - 1)
        cy = (1 - h) * (2 * u[:, 3] - 1)
        flip = torch.where(u[:, 4] < p["hflip"], -1.0, 1.0)
        angle = math.radians(p["rotation"]) * (2 * u[:, 5] - 1)
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

    @staticmethod
    def _colour(x: Tensor, u: Tensor, p: dict) -> Tensor:
        n, c = x.shape[:2]
        if p["brightness"]:
            x = x * (1 + p["brightness"] * (2 * u[:, 0] - 1)).view(n, 1, 1, 1)
        if p["contrast"]:
            grey = _grey(x).mean((1, 2, 3), keepdim=True)
            f = (1 + p["contrast"] * (2 * u[:, 1] - 1)).view(n, 1, 1, 1)
            x = grey + f * (x - grey)
        if p["saturation"] and c == 3:
            f = (1 + p["saturation"] * (2 * u[:, 2] - 1)).view(n, 1, 1, 1)
            grey = _grey(x)
            x = grey + f * (x - grey)
        return x.clamp(0, 255)


def _grey(x: Tensor) -> Tensor:
    if x.shape[1] == 1:
        return x
    w = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)
