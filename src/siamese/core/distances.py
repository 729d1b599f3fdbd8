"""Distances between embeddings, shared by the losses and the metrics so both measure the same d."""

from typing import Literal

import torch
from torch import Tensor

from siamese.core.errors import one_of

Distance = Literal["euclidean", "cosine"]
DISTANCES = ("euclidean", "cosine")

# sqrt has an infinite gradient at 0: identical embeddings must not produce NaN.
_EPS = 1e-12


def check_distance(kind: str) -> None:
    one_of("distance", kind, DISTANCES)


def pair_distance(
    u: Tensor, v: Tensor, kind: Distance = "euclidean", squared: bool = False
) -> Tensor:
    """Row-wise distance of (..., D) tensors; `squared` returns d² (for euclidean, without the sqrt)."""
    if kind == "euclidean":
        d2 = (u - v).pow(2).sum(-1)
        return d2 if squared else d2.clamp_min(_EPS).sqrt()
    d = 1.0 - torch.nn.functional.cosine_similarity(u, v, dim=-1)
    return d.pow(2) if squared else d


def distance_matrix(
    x: Tensor, y: Tensor, kind: Distance = "euclidean", squared: bool = False
) -> Tensor:
    """All distances between rows of x (N, D) and rows of y (M, D): an (N, M) matrix, in float32
    at least: the expanded form cancels catastrophically in bf16, so autocast is kept out."""
    with torch.autocast(x.device.type, enabled=False):
        return _distance_matrix(
            x.float() if x.dtype in _HALF else x,
            y.float() if y.dtype in _HALF else y,
            kind,
            squared,
        )


_HALF = (torch.float16, torch.bfloat16)


def _distance_matrix(x: Tensor, y: Tensor, kind: Distance, squared: bool) -> Tensor:
    if kind == "euclidean":
        # ‖x‖² + ‖y‖² − 2x·y with one matmul and in-place updates: one (N, M) buffer, not five
        d2 = torch.addmm(y.pow(2).sum(1).unsqueeze(0), x, y.T, alpha=-2.0)
        d2 = d2.add_(x.pow(2).sum(1, keepdim=True)).clamp_min_(0.0)
        return d2 if squared else d2.clamp_min(_EPS).sqrt()
    xn = torch.nn.functional.normalize(x, dim=1)
    yn = torch.nn.functional.normalize(y, dim=1)
    d = 1.0 - xn @ yn.T
    return d.pow(2) if squared else d


def weighted_l1_logit(u: Tensor, v: Tensor, weight: Tensor, bias: Tensor | float) -> Tensor:
    """Σ_j w_j |u_j − v_j| + b row-wise for (..., D) tensors: the logit of Koch et al.'s pair
    head, p(same) = σ(logit); its dissimilarity 1 − p is σ(−logit), exact where p is near 1."""
    return (u - v).abs() @ weight + bias
