"""The one signature of every loss, so the LightningModule never branches on which loss it holds."""

from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING
from torch import Tensor, nn

from siamese.core.distances import Distance, check_distance


@dataclass
class LossOutput:
    loss: Tensor  # scalar, differentiable
    parts: dict[str, Tensor]  # detached scalars, for logging only


@dataclass
class LossConf:
    """The types of the keys every loss YAML has; a loss module extends it with its own keys and
    lists it in its `SCHEMAS` ({name: dataclass}), stored as `schema/loss/<name>`."""

    _target_: str = MISSING
    margin: float = MISSING
    distance: str = MISSING


class SiameseLoss(nn.Module):
    """Scores (B, T, D) embeddings with (B, T) int64 labels, T == tuple_size.

    tuple_size is 2 for pairs, 3 for (anchor, positive, negative) and 1 for a P×K batch of single
    images mined in-batch. Subclasses implement `compute`; the shape check and the detaching of the
    logged parts live here. Everything stays on the device: no `.item()`, no host syncs.
    """

    tuple_size: ClassVar[int]

    def __init__(self, distance: Distance = "euclidean"):
        super().__init__()
        check_distance(distance)
        self.distance = distance

    def forward(self, embeddings: Tensor, labels: Tensor) -> LossOutput:
        self._check_shapes(embeddings, labels)
        loss, parts = self.compute(embeddings, labels)
        return LossOutput(loss, {name: value.detach() for name, value in parts.items()})

    def compute(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def pair_head(self) -> nn.Module | None:
        """The head this loss learns to score a pair of embeddings, (u, v) (..., D) → a
        dissimilarity (...) (small: the same class), which verification uses instead of the
        embedding distance; None (every loss but koch): pairs are scored by the distance."""
        return None

    def _check_shapes(self, embeddings: Tensor, labels: Tensor) -> None:
        name, size = type(self).__name__, self.tuple_size
        if embeddings.dim() != 3:
            raise ValueError(
                f"{name} expects embeddings of shape (B, {size}, D), got {tuple(embeddings.shape)}"
            )
        if embeddings.shape[1] != size:
            raise ValueError(
                f"{name} expects tuples of size {size}, got tuples of size {embeddings.shape[1]}"
            )
        if labels.shape != embeddings.shape[:2]:
            raise ValueError(
                f"{name} expects labels of shape {tuple(embeddings.shape[:2])}, "
                f"got {tuple(labels.shape)}"
            )


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of values where mask holds; 0 (still attached to the graph) when it holds nowhere."""
    return values.where(mask, 0.0).sum() / mask.sum().clamp_min(1)
