"""TensorBoard views of what a run learned, written to a `torch.utils.tensorboard.SummaryWriter`
(Lightning's `TensorBoardLogger.experiment` is one). Each function takes explicit tensors and is
meant for the end of a validation epoch or of the run, never for a training step:

- `log_projector`: test embeddings, class names and thumbnails → PROJECTOR tab;
- `log_distance_histograms`: similar / dissimilar pair distances and τ → HISTOGRAMS, DISTRIBUTIONS;
- `log_worst_errors`: the worst pairs at τ, labelled with their distances → IMAGES;
- `log_verification_curves`: PR curve → PR CURVES; ROC curve (a matplotlib figure) → IMAGES.
"""

import math

import numpy as np
import torch
from torch import Tensor

from siamese.metrics.verification import checked_pairs, roc_auc, threshold_sweep

THUMBNAIL = 32  # sprite thumbnails at most this many pixels a side: the sprite stays small
CELL = 64  # height of an image in the worst-errors grid


def select_points(n: int, max_points: int) -> Tensor:
    """max_points indices spread evenly over 0..n-1 (all when n ≤ max_points): the same for the
    same n, and every part of a split ordered by class keeps its share."""
    if max_points < 1:
        raise ValueError(f"logger.projector_max_points must be >= 1, got {max_points}")
    if n <= max_points:
        return torch.arange(n)
    return torch.linspace(0, n - 1, max_points, dtype=torch.float64).round().long()


def _rgb_float(images: Tensor) -> Tensor:
    """uint8 (N, C, H, W), C 1 or 3 → float (N, 3, H, W) in [0, 1]."""
    x = images.float().div(255)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def log_projector(
    writer,
    embeddings: Tensor,
    labels: Tensor,
    class_names: list[str] | None,
    images: Tensor | None,
    max_points: int = 1000,
    step: int = 0,
    tag: str = "test_embeddings",
) -> Tensor:
    """The embeddings (N, D) with their class names as metadata and, if `images` (N, C, H, W)
    uint8 are given, their thumbnails as the sprite; at most `max_points`, chosen by
    `select_points`. Returns the indices shown."""
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"embeddings must be (N, D) and labels (N,), got {tuple(embeddings.shape)} and "
            f"{tuple(labels.shape)}"
        )
    keep = select_points(embeddings.shape[0], max_points)
    y = labels[keep].tolist()
    metadata = [class_names[i] if class_names is not None else str(i) for i in y]
    thumbnails = None
    if images is not None:
        thumbnails = _rgb_float(images[keep])
        if max(thumbnails.shape[-2:]) > THUMBNAIL:
            thumbnails = torch.nn.functional.interpolate(
                thumbnails, size=(THUMBNAIL, THUMBNAIL), mode="bilinear", antialias=True
            )
    writer.add_embedding(
        embeddings[keep].float(),
        metadata=metadata,
        label_img=thumbnails,
        global_step=step,
        tag=tag,
    )
    return keep


def log_distance_histograms(
    writer, distances: Tensor, is_same: Tensor, tau: float, step: int, prefix: str = "val"
) -> None:
    """Histograms `{prefix}_distances/similar` and `/dissimilar` at this epoch (`step`), and τ as
    a one-value histogram `/tau`: a spike on the same axis, so the separation and the threshold
    are read together as the epochs go by."""
    d, y = checked_pairs(distances, is_same)
    group = f"{prefix}_distances"
    if y.any():
        writer.add_histogram(f"{group}/similar", d[y], step)
    if (~y).any():
        writer.add_histogram(f"{group}/dissimilar", d[~y], step)
    if not math.isnan(float(tau)):
        writer.add_histogram(f"{group}/tau", torch.tensor([float(tau)]), step)


def worst_pairs(distances: Tensor, is_same: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Indices of the k most distant similar pairs and the k closest dissimilar pairs, worst first
    (ties: the earlier pair first)."""
    d, y = checked_pairs(distances, is_same)
    similar = torch.nonzero(y).squeeze(1)
    dissimilar = torch.nonzero(~y).squeeze(1)
    far = similar[torch.sort(-d[similar], stable=True).indices[:k]]
    close = dissimilar[torch.sort(d[dissimilar], stable=True).indices[:k]]
    return far, close


def worst_errors_grid(
    images: Tensor, pairs: Tensor, distances: Tensor, is_same: Tensor, tau: float, k: int = 8
) -> np.ndarray:
    """An RGB (H, W, 3) uint8 picture: a row of the k most distant similar pairs, a row of the k
    closest dissimilar pairs; each pair is its two images side by side over its distance, marked
    "ERR" when τ gets it wrong (similar with d ≥ τ, dissimilar with d < τ)."""
    from PIL import Image, ImageDraw

    far, close = worst_pairs(distances, is_same, k)
    d = torch.as_tensor(distances).double()
    x = (_rgb_float(images) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    h, w = x.shape[1:3]
    scale = max(1, CELL // h)
    ch, cw = h * scale, 2 * w * scale + 4  # one pair: two images and a 4 px gap
    text_h, pad = 14, 6
    cols = max(k, 1)
    width = max(cols * (cw + pad) + pad, 360)
    title_h = 16
    row_h = title_h + ch + text_h + pad
    canvas = Image.new("RGB", (width, 2 * row_h + pad), "white")
    draw = ImageDraw.Draw(canvas)
    rows = (
        (far, True, f"similar pairs, most distant first (ERR: d >= tau = {tau:.4f})"),
        (close, False, f"dissimilar pairs, closest first (ERR: d < tau = {tau:.4f})"),
    )
    for r, (chosen, same, title) in enumerate(rows):
        top = pad + r * row_h
        draw.text((pad, top), title, fill="black")
        if chosen.numel() == 0:
            draw.text((pad, top + title_h), "(no such pairs)", fill="gray")
        for c, i in enumerate(chosen.tolist()):
            left = pad + c * (cw + pad)
            for j in range(2):
                img = Image.fromarray(x[int(pairs[i, j])]).resize((w * scale, ch), Image.NEAREST)
                canvas.paste(img, (left + j * (w * scale + 4), top + title_h))
            wrong = (float(d[i]) >= tau) if same else (float(d[i]) < tau)
            label = f"d={float(d[i]):.3f}" + (" ERR" if wrong else "")
            draw.text((left, top + title_h + ch + 1), label, fill="red" if wrong else "black")
    return np.asarray(canvas)


def log_worst_errors(
    writer,
    images: Tensor,
    pairs: Tensor,
    distances: Tensor,
    is_same: Tensor,
    tau: float,
    step: int = 0,
    k: int = 8,
    tag: str = "test/worst_errors",
) -> None:
    """`worst_errors_grid` of a split's `images` (N, C, H, W) uint8 and its pairs, as an image."""
    grid = worst_errors_grid(images, pairs, distances, is_same, tau, k)
    writer.add_image(tag, grid, step, dataformats="HWC")


def roc_points(distances: Tensor, is_same: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(FMR, 1 − FNMR, τ) at every threshold between distinct distances: the exact ROC curve."""
    d, y = checked_pairs(distances, is_same)
    taus, pos, neg = threshold_sweep(d, y)
    return neg.double() / neg[-1], pos.double() / pos[-1], taus


def log_verification_curves(
    writer,
    distances: Tensor,
    is_same: Tensor,
    step: int = 0,
    prefix: str = "test",
    tau: float | None = None,
    num_thresholds: int = 201,
) -> None:
    """`{prefix}/pr_curve` (PR CURVES tab; score 1 − d / max d, similar pairs positive) and
    `{prefix}/roc_curve` (IMAGES tab: a matplotlib figure of the exact ROC, AUC in the title, the
    operating point at `tau` marked)."""
    from matplotlib.figure import Figure

    d, y = checked_pairs(distances, is_same)
    top = float(d.max()) or 1.0
    score = (1.0 - d / top).clamp(0, 1)
    writer.add_pr_curve(f"{prefix}/pr_curve", y, score, step, num_thresholds=num_thresholds)

    fmr, tmr, _ = roc_points(d, y)
    fig = Figure(figsize=(4, 4), dpi=100)
    ax = fig.add_subplot()
    ax.plot(fmr.numpy(), tmr.numpy(), drawstyle="steps-post", label="ROC")
    ax.plot([0, 1], [0, 1], ls=":", c="gray", lw=0.8)
    if tau is not None and not math.isnan(tau):
        at = (float((d[~y] < tau).double().mean()), float((d[y] < tau).double().mean()))
        ax.plot(*at, "o", c="red", label=f"τ = {tau:.3f}")
        ax.legend(loc="lower right")
    ax.set(
        xlabel="false match rate",
        ylabel="true match rate (1 − FNMR)",
        title=f"{prefix} ROC, AUC {roc_auc(d, y):.4f}",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    fig.tight_layout()
    writer.add_figure(f"{prefix}/roc_curve", fig, step)


__all__ = [
    "log_distance_histograms",
    "log_projector",
    "log_verification_curves",
    "log_worst_errors",
    "roc_points",
    "select_points",
    "worst_errors_grid",
    "worst_pairs",
]
