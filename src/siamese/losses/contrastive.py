"""Contrastive loss on pairs (Hadsell, Chopra, LeCun 2006)."""

from torch import Tensor

from siamese.core.distances import pair_distance
from siamese.core.errors import positive
from siamese.losses.base import LossConf, SiameseLoss

SCHEMAS = {"contrastive": LossConf}


def contrastive_terms(d: Tensor, similar: Tensor, margin: float) -> tuple[Tensor, Tensor]:
    """Per pair y·d² (pulls similar pairs together) and (1−y)·max(0, m − d)² (pushes the rest)."""
    y = similar.to(d.dtype)
    return y * d.pow(2), (1 - y) * (margin - d).clamp_min(0).pow(2)


class ContrastiveLoss(SiameseLoss):
    """L = mean[y·d² + (1−y)·max(0, m − d)²], y = 1 when both members share a label.

    parts: "positive" and "negative", the batch means of the two terms (they add up to the loss).
    """

    tuple_size = 2

    def __init__(self, margin: float = 1.0, distance: str = "euclidean"):
        super().__init__(distance)
        self.margin = positive("margin", margin)

    def compute(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        d = pair_distance(embeddings[:, 0], embeddings[:, 1], self.distance)
        pull, push = contrastive_terms(d, labels[:, 0] == labels[:, 1], self.margin)
        return (pull + push).mean(), {"positive": pull.mean(), "negative": push.mean()}
