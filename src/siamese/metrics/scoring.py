"""Scores one split from its embeddings, computed once and shared by every metric."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from siamese.core.distances import DISTANCES, pair_distance
from siamese.core.errors import ArgumentError, at_least, one_of
from siamese.data.imageset import ImageSet
from siamese.metrics import (
    fnmr_at_fmr,
    one_shot_accuracy,
    retrieval_metrics,
    verification_metrics,
)
from siamese.metrics.oneshot import within_group_accuracies
from siamese.metrics.reid import reid_metrics

# (u, v) (..., D) embeddings → (...) dissimilarities, small = same class: a learned pair head
PairScorer = Callable[[Tensor, Tensor], Tensor]
_RERANK_BLOCK = 1 << 22  # elements of |u − v| held at once while re-ranking


@dataclass
class Rerank:
    """Each query's k nearest (by embedding distance) put in the order of `pair_scorer`, the
    rest left as they were: what `evaluation.rerank_k` does to retrieval."""

    embeddings: Tensor
    pair_scorer: PairScorer
    k: int

    def __call__(self, queries: Tensor, nearest: Tensor) -> Tensor:
        """queries (Q,), their neighbours nearest first (Q, M) → the same, re-ranked."""
        k = min(self.k, nearest.shape[1])
        top, block = nearest[:, :k], max(1, _RERANK_BLOCK // (k * self.embeddings.shape[1]))
        scores = torch.cat(
            [
                self.pair_scorer(self.embeddings[q].unsqueeze(1), self.embeddings[t])
                for q, t in zip(queries.split(block), top.split(block), strict=True)
            ]
        )
        order = scores.argsort(dim=1, stable=True)  # a tie keeps the embedding distance's order
        return torch.cat([top.gather(1, order), nearest[:, k:]], 1)


@dataclass
class Scorer:
    """What to compute: `one_shot_ways` empty turns one-shot off; `seed` fixes its trials;
    `rerank_k` (with a pair scorer) re-ranks each retrieval query's k nearest with it."""

    distance: str = "euclidean"
    recall_ks: tuple[int, ...] = (1, 2, 4, 8)
    one_shot_ways: tuple[int, ...] = (5, 20)
    one_shot_trials: int = 1000
    chunk_size: int | None = None  # queries per block of retrieval; None: sized for the device
    seed: int = 0
    fmr_targets: tuple[float, ...] = ()
    rerank_k: int | None = None

    def __post_init__(self) -> None:
        one_of("distance", self.distance, DISTANCES)
        if not self.recall_ks or any(k < 1 for k in self.recall_ks):
            raise ArgumentError(
                "recall_ks", f"must be >= 1 each, at least one, got {self.recall_ks}"
            )
        if any(n < 2 for n in self.one_shot_ways):
            raise ArgumentError("one_shot_ways", f"must all be >= 2, got {self.one_shot_ways}")
        if any(not 0 < t < 1 for t in self.fmr_targets):
            raise ArgumentError("fmr_targets", f"must each be in (0, 1), got {self.fmr_targets}")
        at_least("one_shot_trials", self.one_shot_trials, 1)
        if self.chunk_size is not None:
            at_least("chunk_size", self.chunk_size, 1)
        if self.rerank_k is not None:
            at_least("rerank_k", self.rerank_k, 1)

    def pair_distances(
        self,
        embeddings: Tensor,
        labels: Tensor,
        pairs: Tensor,
        pair_scorer: PairScorer | None = None,
    ):
        """(d, is_same) of the fixed pairs (P, 2) of a split: d by `pair_scorer` if given (a
        learned head), else the embedding distance."""
        e, same = embeddings.float(), labels[pairs[:, 0]] == labels[pairs[:, 1]]
        if pair_scorer is None:
            return pair_distance(e[pairs[:, 0]], e[pairs[:, 1]], self.distance), same
        with torch.no_grad():
            return pair_scorer(e[pairs[:, 0]], e[pairs[:, 1]]).float(), same

    def __call__(
        self,
        embeddings: Tensor,
        labels: Tensor,
        pairs: Tensor,
        threshold: float | None = None,
        fmr_thresholds: dict[float, float] | None = None,
        roles: Tensor | None = None,
        class_names: list[str] | None = None,
        pair_scorer: PairScorer | None = None,
    ) -> dict[str, float]:
        """Verification on the fixed `pairs`, at `threshold` if given (τ from val, applied to
        test) or at the best-accuracy τ of these pairs, and FNMR at each FMR target (its τ chosen
        here, or given); retrieval and one-shot on all embeddings; with `roles` (N, 2) (is_query,
        is_gallery) also the queries against the gallery: CMC@k for the recall ks, mAP; one-shot
        within groups when every one of the split's `class_names` has one (`alphabet/character`).
        With `pair_scorer` (a module's learned head) verification scores pairs by it, and
        retrieval re-ranks by it if asked."""
        embeddings = embeddings.float()
        d, same = self.pair_distances(embeddings, labels, pairs, pair_scorer)
        out = verification_metrics(d, same, threshold)
        if self.fmr_targets:
            out |= fnmr_at_fmr(d, same, self.fmr_targets, fmr_thresholds)
        rerank = None
        if pair_scorer is not None and self.rerank_k is not None:
            rerank = Rerank(embeddings, pair_scorer, self.rerank_k)
        out |= retrieval_metrics(
            embeddings, labels, self.recall_ks, self.distance, self.chunk_size, rerank=rerank
        )
        usable = int(torch.unique(labels).numel())
        for n in self.one_shot_ways:
            if n <= usable:
                g = torch.Generator().manual_seed(self.seed)
                out[f"one_shot_{n}way"] = one_shot_accuracy(
                    embeddings, labels, n, self.one_shot_trials, g, self.distance
                )
        if roles is not None and bool(roles.any(0).all()):  # queries and a gallery
            out |= reid_metrics(embeddings, labels, *roles.T, self.recall_ks, self.distance)
        if class_names is not None:
            out |= within_group_accuracies(
                embeddings,
                labels,
                class_names,
                self.one_shot_ways,
                self.one_shot_trials,
                self.seed,
                self.distance,
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


def score_split(
    module,
    data: ImageSet,
    pairs: Tensor,
    scorer: Scorer,
    threshold: float | None = None,
    batch_size: int = 512,
    fmr_thresholds: dict[float, float] | None = None,
) -> tuple[dict[str, float], Tensor]:
    """A module's metrics on a split outside a Lightning loop (a checkpoint, an untrained
    encoder), and the embeddings they came from; Lightning's loops feed `scorer` the same way."""
    embeddings, labels = embed_split(module, data, batch_size)
    metrics = scorer(
        embeddings,
        labels,
        pairs,
        threshold,
        fmr_thresholds,
        data.roles,
        data.class_names,
        module.pair_scorer(),
    )
    return metrics, embeddings
