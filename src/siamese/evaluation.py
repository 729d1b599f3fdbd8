"""Scores one split from its embeddings, computed once and shared by every metric."""

from dataclasses import dataclass

import torch
from torch import Tensor

from siamese.data.imageset import ImageSet
from siamese.distances import pair_distance
from siamese.metrics import one_shot_accuracy, retrieval_metrics, verification_metrics


@dataclass
class Evaluation:
    """What to compute: `one_shot_ways` empty turns one-shot off; `seed` fixes its trials."""

    distance: str = "euclidean"
    recall_ks: tuple[int, ...] = (1, 2, 4, 8)
    one_shot_ways: tuple[int, ...] = (5, 20)
    one_shot_trials: int = 1000
    chunk_size: int = 1024
    seed: int = 0

    def __call__(
        self, embeddings: Tensor, labels: Tensor, pairs: Tensor, threshold: float | None = None
    ) -> dict[str, float]:
        """Verification on the fixed `pairs`, at `threshold` if given (τ from val, applied to
        test) or at the best-accuracy τ of these pairs; retrieval and one-shot on all embeddings."""
        embeddings = embeddings.float()
        d = pair_distance(embeddings[pairs[:, 0]], embeddings[pairs[:, 1]], self.distance)
        same = labels[pairs[:, 0]] == labels[pairs[:, 1]]
        out = verification_metrics(d, same, threshold)
        out |= retrieval_metrics(embeddings, labels, self.recall_ks, self.distance, self.chunk_size)
        usable = int(torch.unique(labels).numel())
        for n in self.one_shot_ways:
            if n <= usable:
                g = torch.Generator().manual_seed(self.seed)
                out[f"one_shot_{n}way"] = one_shot_accuracy(
                    embeddings, labels, n, self.one_shot_trials, g, self.distance
                )
        return out


@torch.no_grad()
def embed_split(module, data: ImageSet, batch_size: int = 512) -> tuple[Tensor, Tensor]:
    """Embeddings of every image of a split, in eval mode, on the module's device, back on the CPU."""
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    chunks = [
        module.embed(data.images[i : i + batch_size].to(device)).cpu()
        for i in range(0, len(data), batch_size)
    ]
    module.train(was_training)
    return torch.cat(chunks), data.labels
