"""SDRN loss: contrastive plus a hinged KL regulariser from a jointly trained discriminator head."""

from dataclasses import dataclass

import torch.nn.functional as F
from omegaconf import MISSING
from torch import Tensor, nn

from siamese.core.errors import at_least, non_negative
from siamese.losses.base import LossConf
from siamese.losses.contrastive import ContrastiveLoss


@dataclass
class SDRNConf(LossConf):
    num_classes: int | None = MISSING  # None: the training split's class count
    embedding_dim: int = MISSING
    lam: float = MISSING
    gamma: float = MISSING
    hidden_dim: int = MISSING


SCHEMAS = {"sdrn": SDRNConf}


class SDRNLoss(ContrastiveLoss):
    """contrastive + lam · mean over all B·T samples of max(0, KL(p(y|x) ‖ q(y|x)) − gamma).

    q is `self.discriminator`, a classifier from the embedding to the training classes; being a
    submodule of the loss, its parameters are trained by whichever module holds the loss. p is
    one-hot on the label, so KL(p ‖ q) is q's cross-entropy on the label. Labels must lie in
    0..num_classes-1: checking would need a host sync, so only cross_entropy's own check applies.

    parts: "contrastive", "kl" (mean KL before the hinge), "regulariser" (lam · hinged mean).
    """

    tuple_size = 2

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        margin: float = 1.0,
        lam: float = 1.0,
        gamma: float = 0.0,
        hidden_dim: int = 64,
        distance: str = "euclidean",
    ):
        super().__init__(margin, distance)
        self.num_classes = at_least("num_classes", num_classes, 2)
        embedding_dim = at_least("embedding_dim", embedding_dim, 1)
        hidden_dim = at_least("hidden_dim", hidden_dim, 1)
        self.lam = non_negative("lam", lam)
        self.gamma = non_negative("gamma", gamma)
        self.discriminator = nn.Sequential(
            nn.Linear(embedding_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, num_classes)
        )

    def compute(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        contrastive, _ = super().compute(embeddings, labels)
        logits = self.discriminator(embeddings.flatten(0, 1))
        kl = F.cross_entropy(logits, labels.flatten(), reduction="none")
        regulariser = self.lam * (kl - self.gamma).clamp_min(0).mean()
        # Always added, even for lam = 0: the discriminator stays in the graph (DDP wants every
        # parameter used), and c + 0·r == c bit for bit since r is finite.
        loss = contrastive + regulariser
        parts = {"contrastive": contrastive, "kl": kl.mean(), "regulariser": regulariser}
        return loss, parts
