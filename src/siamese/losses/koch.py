"""Koch, Zemel, Salakhutdinov 2015: a learned pair head, p(same) = σ(Σ_j α_j |u_j − v_j| + b) on
the two embeddings, trained with binary cross-entropy on same/different pairs."""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from omegaconf import MISSING
from torch import Tensor, nn

from siamese.core.distances import weighted_l1_logit
from siamese.core.errors import at_least
from siamese.losses.base import SiameseLoss, masked_mean


@dataclass
class KochLossConf:
    """No margin and no distance: the head learns its own weighted L1 distance."""

    _target_: str = MISSING
    embedding_dim: int = MISSING


SCHEMAS = {"koch": KochLossConf}


class WeightedL1Head(nn.Module):
    """p(same | u, v) = σ(Σ_j α_j |u_j − v_j| + b), α (one weight per embedding dimension) and b
    learned. Called, it returns the dissimilarity 1 − p: small for a similar pair, so that d < τ
    means "same" as it does for distances."""

    def __init__(self, embedding_dim: int):
        super().__init__()
        self.linear = nn.Linear(at_least("embedding_dim", embedding_dim, 1), 1)
        with torch.no_grad():  # start as a plain L1 distance: it agrees with the embedding's
            self.linear.weight.fill_(-1 / math.sqrt(embedding_dim))
            self.linear.bias.zero_()

    def logits(self, u: Tensor, v: Tensor) -> Tensor:
        """(..., D) embeddings on any device → (...) logits of p(same), on theirs."""
        weight, bias = self.linear.weight[0].to(u.device), self.linear.bias[0].to(u.device)
        return weighted_l1_logit(u, v, weight, bias)

    def forward(self, u: Tensor, v: Tensor) -> Tensor:
        return torch.sigmoid(-self.logits(u, v))

    def exported(self) -> dict:
        """Its values, for an export's JSON (siamese.inference computes 1 − p from them)."""
        weight, bias = self.linear.weight.detach()[0], self.linear.bias.detach()[0]
        return {"kind": "weighted_l1", "weight": weight.tolist(), "bias": float(bias)}


class KochLoss(SiameseLoss):
    """L = mean over pairs of −[y·log p + (1 − y)·log(1 − p)], y = 1 when both members share a
    label and p = `self.head`'s p(same). The head is a submodule of the loss, so whichever module
    holds the loss trains it, and `pair_head` hands it to verification.

    parts: "similar" and "dissimilar", the mean cross-entropy of each kind of pair (0 where the
    batch has none).
    """

    tuple_size = 2

    def __init__(self, embedding_dim: int):
        super().__init__()
        self.head = WeightedL1Head(embedding_dim)

    def compute(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self.head.logits(embeddings[:, 0], embeddings[:, 1])
        same = labels[:, 0] == labels[:, 1]
        bce = F.binary_cross_entropy_with_logits(logits, same.to(logits.dtype), reduction="none")
        parts = {"similar": masked_mean(bce, same), "dissimilar": masked_mean(bce, ~same)}
        return bce.mean(), parts

    def pair_head(self) -> WeightedL1Head:
        return self.head
