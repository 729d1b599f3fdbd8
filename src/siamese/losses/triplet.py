"""Triplet loss on (anchor, positive, negative) tuples, and the options all triplet losses share."""

from dataclasses import dataclass

from omegaconf import MISSING
from torch import Tensor

from siamese.core.distances import pair_distance
from siamese.core.errors import positive
from siamese.losses.base import LossConf, SiameseLoss


@dataclass
class TripletConf(LossConf):
    squared_distance: bool = MISSING
    squared_hinge: bool = MISSING


SCHEMAS = {"triplet": TripletConf}  # also the mined triplet losses' (same keys)


class TripletMarginBase(SiameseLoss):
    """margin, squared_distance (hinge on d² instead of d) and squared_hinge (square the hinge)."""

    def __init__(
        self,
        margin: float,
        squared_distance: bool,
        squared_hinge: bool,
        distance: str = "euclidean",
    ):
        super().__init__(distance)
        self.margin = positive("margin", margin)
        self.squared_distance = bool(squared_distance)
        self.squared_hinge = bool(squared_hinge)

    def hinge(self, d_ap: Tensor, d_an: Tensor) -> Tensor:
        """max(0, d(a,p) − d(a,n) + m), squared when squared_hinge; d is already d² if asked."""
        h = (d_ap - d_an + self.margin).clamp_min(0)
        return h.pow(2) if self.squared_hinge else h


class TripletLoss(TripletMarginBase):
    """L = mean[max(0, d(a,p)² − d(a,n)² + m)] by default; see TripletMarginBase for the variants.

    parts: "active_fraction", the fraction of triplets with a positive hinge.
    """

    tuple_size = 3

    def compute(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        anchor, pos, neg = embeddings.unbind(1)
        d_ap = pair_distance(anchor, pos, self.distance, squared=self.squared_distance)
        d_an = pair_distance(anchor, neg, self.distance, squared=self.squared_distance)
        h = self.hinge(d_ap, d_an)
        return h.mean(), {"active_fraction": (h > 0).to(h.dtype).mean()}
