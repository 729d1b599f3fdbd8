"""Losses on class-balanced P×K batches of single images (tuple_size 1), mined in-batch.

Each builds one (B, B) distance matrix and mines it with mining.py, so memory is O(B²), never
O(B³). A batch without a valid anchor (one with a positive and a negative) gives a loss of exactly
0 that is still attached to the graph; parts["valid_fraction"] is the fraction of valid anchors.
"""

from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import Tensor

from siamese.core.distances import distance_matrix
from siamese.core.errors import positive
from siamese.losses.base import LossConf, SiameseLoss, masked_mean
from siamese.losses.contrastive import contrastive_terms
from siamese.losses.mining import (
    batch_all,
    batch_hard,
    hard_pair_mask,
    same_class_masks,
    semi_hard_negatives,
    valid_anchors,
)
from siamese.losses.triplet import TripletMarginBase


@dataclass
class ContrastiveAllPairsConf(LossConf):
    hard_pairs: bool = MISSING


SCHEMAS = {"contrastive_all_pairs": ContrastiveAllPairsConf}


def fraction(mask: Tensor, dtype: torch.dtype) -> Tensor:
    return mask.to(dtype).mean()


def all_distances(embeddings: Tensor, kind: str, squared: bool) -> Tensor:
    x = embeddings[:, 0]
    dist = distance_matrix(x, x, kind, squared=squared)
    # hinge differences and prefix sums lose too much in half precision
    return dist.to(torch.promote_types(dist.dtype, torch.float32))


class MinedTripletLoss(TripletMarginBase):
    """Triplet options as in TripletLoss; d is d² unless squared_distance=False."""

    tuple_size = 1

    def pairwise(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        dist = all_distances(embeddings, self.distance, self.squared_distance)
        labels = labels[:, 0]
        return dist, labels, valid_anchors(*same_class_masks(labels))


class TripletBatchHardLoss(MinedTripletLoss):
    """Mean over valid anchors of the hinge on the farthest positive and nearest negative.

    parts: "valid_fraction", "active_fraction" (valid anchors with a positive hinge).
    """

    def compute(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        dist, labels, valid = self.pairwise(embeddings, labels)
        pos_idx, neg_idx, _ = batch_hard(dist, labels)
        h = self.hinge(dist.gather(1, pos_idx[:, None]), dist.gather(1, neg_idx[:, None]))[:, 0]
        parts = {
            "valid_fraction": fraction(valid, dist.dtype),
            "active_fraction": masked_mean((h > 0).to(h.dtype), valid),
        }
        return masked_mean(h, valid), parts


class TripletSemiHardLoss(MinedTripletLoss):
    """Mean over the anchor-positive pairs that have a semi-hard negative, d(a,p) < d(a,n) <
    d(a,p) + m (in the d the hinge uses), of the hinge on the nearest one. Pairs without one are
    dropped (no FaceNet-style fallback), so every kept triplet has a positive hinge.

    parts: "valid_fraction", "mined_fraction" (positive pairs with a semi-hard negative).
    """

    def compute(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        dist, labels, valid = self.pairwise(embeddings, labels)
        neg_idx, mined = semi_hard_negatives(dist, labels, self.margin)
        h = self.hinge(dist, dist.gather(1, neg_idx))  # [a, p]
        pos_mask, _ = same_class_masks(labels)
        parts = {
            "valid_fraction": fraction(valid, dist.dtype),
            "mined_fraction": mined.sum() / pos_mask.sum().clamp_min(1),
        }
        return masked_mean(h, mined), parts


class TripletBatchAllLoss(MinedTripletLoss):
    """Mean of the hinge over the valid triplets whose hinge is positive (Hermans et al.'s
    batch-all), by prefix sums over sorted negatives (see mining.batch_all).

    parts: "valid_fraction", "active_triplets" (count), "active_fraction" (of all valid triplets).
    """

    def compute(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        dist, labels, valid = self.pairwise(embeddings, labels)
        hinge_sum, active = batch_all(dist, labels, self.margin, self.squared_hinge)
        n_active = active.sum()
        pos_mask, neg_mask = same_class_masks(labels)
        n_triplets = (pos_mask.sum(1) * neg_mask.sum(1)).sum()
        parts = {
            "valid_fraction": fraction(valid, dist.dtype),
            "active_triplets": n_active.to(dist.dtype),
            "active_fraction": n_active / n_triplets.clamp_min(1),
        }
        return hinge_sum.sum() / n_active.clamp_min(1), parts


class ContrastiveAllPairsLoss(SiameseLoss):
    """Contrastive loss averaged over the in-batch pairs i < j with a valid member.

    hard_pairs=True keeps only the hard ones (mining.hard_pair_mask): positive pairs farther than
    their anchor's nearest negative, negative pairs closer than their anchor's farthest positive,
    either member taken as the anchor.

    parts: "positive", "negative" (the two terms' means over kept pairs, adding up to the loss),
    "kept_fraction" (kept pairs among all i < j), "valid_fraction".
    """

    tuple_size = 1

    def __init__(self, margin: float = 1.0, hard_pairs: bool = False, distance: str = "euclidean"):
        super().__init__(distance)
        self.margin = positive("margin", margin)
        self.hard_pairs = bool(hard_pairs)

    def compute(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        dist = all_distances(embeddings, self.distance, squared=False)
        labels = labels[:, 0]
        pos_mask, neg_mask = same_class_masks(labels)
        valid = valid_anchors(pos_mask, neg_mask)
        upper = torch.ones_like(pos_mask).triu(1)
        kept = upper & (valid[:, None] | valid[None, :])
        if self.hard_pairs:
            kept = kept & hard_pair_mask(dist, labels)
        pull, push = contrastive_terms(dist, pos_mask, self.margin)
        parts = {
            "positive": masked_mean(pull, kept),
            "negative": masked_mean(push, kept),
            "kept_fraction": kept.sum() / upper.sum().clamp_min(1),
            "valid_fraction": fraction(valid, dist.dtype),
        }
        return masked_mean(pull + push, kept), parts
