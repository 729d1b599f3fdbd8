"""Koch's affine augmentation (augmentation=affine): shear, scale and translation do what they say
on hand-made images, the other options draw exactly as before, and a resume replays the draws."""

import pytest
import torch
import torch.nn.functional as F

from siamese.core.errors import ArgumentError
from siamese.run.build import build
from tests.helpers import augmentation

SIDE = 33  # odd: the centre is a pixel (16, 16)
C = SIDE // 2


def dot(n: int, dx: int, dy: int) -> torch.Tensor:
    """n grey images, black but for a bright round blob (σ 1.5 px) at (dx, dy) from the centre,
    y down: smooth, so that resampling moves its centroid exactly where its centre goes."""
    grid = torch.arange(SIDE, dtype=torch.float64) - C
    blob = torch.exp(-((grid - dx).pow(2)[None, :] + (grid - dy).pow(2)[:, None]) / (2 * 1.5**2))
    return (255 * blob).round().to(torch.uint8).expand(n, 1, SIDE, SIDE).clone()


def centroid(images: torch.Tensor) -> torch.Tensor:
    """(n, 2) intensity-weighted (x, y) of each image, from the centre."""
    w = images[:, 0].double()
    grid = torch.arange(SIDE, dtype=torch.float64) - C
    total = w.sum((1, 2))
    return torch.stack([(w.sum(1) * grid).sum(1) / total, (w.sum(2) * grid).sum(1) / total], 1)


def koch_draws(n: int, seed: int) -> torch.Tensor:
    """The 6 uniforms per image an affine call draws after the 9 every call draws."""
    g = torch.Generator().manual_seed(seed)
    torch.rand(n, 9, generator=g)
    return torch.rand(n, 6, generator=g)


def only(**values):
    return augmentation("none", **values)


def test_translation_moves_a_pixel_by_the_drawn_pixels():
    n = 64
    out = only(translate=2.0)(dot(n, 0, 0), torch.Generator().manual_seed(3))
    v = koch_draws(n, 3)
    expected = 2.0 * (2 * v[:, 4:6] - 1)  # (x right, y down), uniform in ±2 px
    moved = centroid(out)
    assert torch.allclose(moved, expected.double(), atol=0.02)
    assert moved.abs().max() <= 2.02 and moved.abs().max() > 1.5  # the range is used


@pytest.mark.parametrize("factor", [0.8, 1.2])
def test_scale_moves_pixels_away_from_the_centre_by_its_factor(factor):
    aug = only(scale=(factor, factor))
    left = aug(dot(2, -5, 0), torch.Generator().manual_seed(0))
    below = aug(dot(2, 0, 5), torch.Generator().manual_seed(0))
    assert torch.allclose(centroid(left), torch.tensor([-5 * factor, 0.0]).double(), atol=0.02)
    assert torch.allclose(centroid(below), torch.tensor([0.0, 5 * factor]).double(), atol=0.02)


def test_shear_moves_x_by_rho_x_times_y_and_y_by_rho_y_times_x():
    n = 32
    v = koch_draws(n, 4)
    rho = 0.3 * (2 * v[:, 2:4] - 1)  # (ρx, ρy), each uniform in ±0.3
    below = centroid(only(shear=0.3)(dot(n, 0, 6), torch.Generator().manual_seed(4)))
    right = centroid(only(shear=0.3)(dot(n, 6, 0), torch.Generator().manual_seed(4)))
    assert torch.allclose(below[:, 0], 6 * rho[:, 0].double(), atol=0.02)  # x += ρx·y
    assert torch.allclose(below[:, 1], torch.full((n,), 6.0).double(), atol=0.02)
    assert torch.allclose(right[:, 1], 6 * rho[:, 1].double(), atol=0.02)  # y += ρy·x
    assert rho[:, 0].abs().max() > 0.2 and (rho > 0).any() and (rho < 0).any()


@pytest.mark.parametrize("kind", ["none", "light", "strong"])
def test_the_options_without_affine_draw_as_they_always_did(kind):
    images = torch.zeros(4, 3, 3, 16, 16, dtype=torch.uint8)
    g, plain = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    augmentation(kind)(images, g)
    if kind != "none":  # an active augmentation draws 9 uniforms per image, nothing more
        torch.rand(12, 9, generator=plain)
    assert torch.equal(g.get_state(), plain.get_state())


def test_affine_keeps_shape_dtype_and_every_image_in_its_place():
    coarse = torch.rand(12, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    smooth = F.interpolate(coarse, size=24, mode="bilinear", align_corners=False)
    images = (255 * smooth).round().to(torch.uint8).view(6, 2, 1, 24, 24)  # (B, T, C, H, W)
    out = augmentation("affine")(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert not torch.equal(out, images)
    # each augmented image is nearest the image it came from: the labels still apply
    a, b = out.flatten(0, 1).flatten(1).float(), images.flatten(0, 1).flatten(1).float()
    assert torch.equal(torch.cdist(a, b).argmin(1), torch.arange(12))


def test_affine_draws_more_and_replay_draws_the_same():
    images = torch.zeros(5, 2, 1, 16, 16, dtype=torch.uint8)
    aug = augmentation("affine")
    g, replayed = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    for _ in range(3):
        aug(images, g)
    aug.replay(replayed, images, 3)
    assert torch.equal(g.get_state(), replayed.get_state())
    plain = torch.Generator().manual_seed(2)
    for _ in range(3):
        torch.rand(10, 9, generator=plain)
    assert not torch.equal(g.get_state(), plain.get_state())


def test_a_resumed_module_continues_the_augmentation_where_it_stopped(make_config):
    datamodule, whole = build(make_config("augmentation=affine"))
    images = next(iter(datamodule.train_dataloader()))["images"]
    g = whole.augment_generator(images)
    for _ in range(3):
        whole.augment(images, g)
    expected = whole.augment(images, g)
    _, resumed = build(make_config("augmentation=affine"))
    resumed.on_load_checkpoint({"augmented_batches": 3})  # what a checkpoint after 3 batches holds
    assert torch.equal(resumed.augment(images, resumed.augment_generator(images)), expected)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"shear": 1.0}, r"^shear must be in \(0, 1\), got 1.0"),
        ({"shear": -0.1}, r"^shear must be in \(0, 1\)"),
        ({"scale": (1.2, 0.8)}, r"^scale must satisfy 0 < low <= high, got \[1.2, 0.8\]"),
        ({"scale": (0.0, 1.0)}, "^scale must satisfy 0 < low <= high"),
        ({"translate": -2.0}, "^translate must be >= 0, got -2.0"),
    ],
)
def test_bad_affine_values_name_the_argument(values, message):
    with pytest.raises(ArgumentError, match=message):
        augmentation("affine", **values)
