"""The embedded default data set: procedurally drawn glyphs, no download, deterministic from a seed.

A class is a glyph (a few random strokes) with a colour scheme taken from a small palette, so colour
alone never identifies a class; a sample is a random distortion of its class's glyph (affine jitter,
stroke jitter and width, colour jitter, pixel noise).
"""

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from siamese.core.errors import at_least, non_negative, one_of
from siamese.data.imageset import ImageSet


@dataclass(frozen=True)
class SyntheticGlyphs:
    num_classes: int = 100
    samples_per_class: int = 40
    strokes: int = 3
    palette_size: int = 6
    rotation: float = 0.3  # radians, uniform ±
    scale: float = 0.2  # uniform 1 ± scale
    translation: float = 0.15  # fraction of the half-width, uniform ±
    stroke_jitter: float = 0.06
    colour_jitter: float = 0.12
    noise: float = 0.08
    seed: int = 0

    def __post_init__(self) -> None:
        lowest = {"num_classes": 2, "samples_per_class": 1, "strokes": 1, "palette_size": 1}
        for key, low in lowest.items():
            at_least(key, getattr(self, key), low)
        for key in ("rotation", "scale", "translation", "stroke_jitter", "colour_jitter", "noise"):
            non_negative(key, getattr(self, key))

    def __call__(self, *, image_size: int, channels: int = 3, resize: str = "stretch") -> ImageSet:
        """The glyphs drawn at `image_size` (resize: drawn at the size, nothing to resize); grey
        (luminance) with `channels=1`."""
        at_least("image_size", image_size, 8)
        one_of("channels", channels, (1, 3))
        data = self._draw(image_size)
        if channels == 1:
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            grey = (data.images.float() * weights).sum(1, keepdim=True).round().to(torch.uint8)
            data = ImageSet(images=grey, labels=data.labels, class_names=data.class_names)
        return data

    def _draw(self, size: int) -> ImageSet:
        g = torch.Generator().manual_seed(self.seed)
        c, k, s = self.num_classes, self.samples_per_class, self.strokes
        strokes = torch.rand(c, s, 2, 2, generator=g) * 1.4 - 0.7  # (class, stroke, end, xy)
        palette = _palette(self.palette_size, g)  # (scheme, fg/bg, rgb)
        scheme = torch.randint(self.palette_size, (c,), generator=g)

        labels = torch.arange(c).repeat_interleave(k)
        n = labels.numel()
        seg = strokes[labels] + self.stroke_jitter * torch.randn(n, s, 2, 2, generator=g)
        width = 0.07 + 0.07 * torch.rand(n, 1, generator=g)
        inverse, shift = self._affine(n, g)
        colours = palette[scheme[labels]] + self.colour_jitter * torch.randn(n, 2, 3, generator=g)

        images = torch.empty(n, 3, size, size, dtype=torch.uint8)
        for start in range(0, n, 1024):  # chunks bound the (chunk, strokes, pixels) distance tensor
            sl = slice(start, start + 1024)
            ink = self._render(
                seg[sl], width[sl], inverse[sl], shift[sl], size
            )  # (b, H*W) in [0, 1]
            fg, bg = colours[sl, 0, :, None], colours[sl, 1, :, None]
            rgb = bg + (fg - bg) * ink[:, None, :]
            rgb = rgb + self.noise * torch.randn(rgb.shape, generator=g)
            images[sl] = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).view(-1, 3, size, size)
        return ImageSet(
            images=images, labels=labels, class_names=[f"glyph{i:03d}" for i in range(c)]
        )

    def _affine(self, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        angle = (torch.rand(n, generator=g) * 2 - 1) * self.rotation
        scale = 1 + (torch.rand(n, generator=g) * 2 - 1) * self.scale
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        inverse = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
        shift = (torch.rand(n, 2, generator=g) * 2 - 1) * self.translation
        return inverse, shift

    def _render(
        self, seg: Tensor, width: Tensor, inverse: Tensor, shift: Tensor, size: int
    ) -> Tensor:
        axis = (torch.arange(size) + 0.5) / size * 2 - 1
        yy, xx = torch.meshgrid(axis, axis, indexing="ij")
        pixels = torch.stack([xx.flatten(), yy.flatten()], -1)  # (P, 2)
        # pixels mapped back into each glyph's own frame
        q = torch.einsum("bij,bpj->bpi", inverse, pixels[None] - shift[:, None])  # (b, P, 2)
        a, b = seg[:, :, 0], seg[:, :, 1]  # (b, S, 2)
        ab = b - a
        ap = q[:, None] - a[:, :, None]  # (b, S, P, 2)
        t = (ap * ab[:, :, None]).sum(-1) / ab.pow(2).sum(-1, keepdim=True).clamp_min(1e-6)
        closest = a[:, :, None] + t.clamp(0, 1)[..., None] * ab[:, :, None]
        dist = (q[:, None] - closest).norm(dim=-1).amin(1)  # (b, P)
        soft = 2.0 / size  # anti-aliasing: about one pixel
        return ((width - dist) / soft + 0.5).clamp(0, 1)


def _palette(size: int, g: torch.Generator) -> Tensor:
    """Colour schemes (fg, bg) whose glyph also stands out in luminance (about 0.35 apart):
    dark glyphs on light grounds and, every other scheme, light glyphs on dark grounds."""
    hue = torch.arange(size) / size + torch.rand(1, generator=g)
    dark = torch.stack([0.1 + 0.5 * _hue_to_rgb(h) for h in hue.tolist()])
    light = torch.stack([0.45 + 0.5 * _hue_to_rgb(h + 0.5) for h in hue.tolist()])
    flip = (torch.arange(size) % 2 == 1)[:, None]
    fg, bg = torch.where(flip, light, dark), torch.where(flip, dark, light)
    return torch.stack([fg, bg], 1)


def _hue_to_rgb(h: float) -> Tensor:
    return torch.tensor([0.5 + 0.45 * math.cos(2 * math.pi * (h + o)) for o in (0, 1 / 3, 2 / 3)])
