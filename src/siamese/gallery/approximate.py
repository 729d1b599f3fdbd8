"""Approximate nearest neighbours with FAISS (the optional extra `siamese[faiss]`), for galleries
where exact search stops paying (bench/bench_index.py measures where).

`auto` picks by gallery size: exact below AUTO_MIN, HNSW (a graph: fast queries, a slow build)
below IVF_MIN, IVF (k-means cells: a fast build) from there. The search-time knob (IVF's nprobe,
HNSW's efSearch) is raised until recall@k against exact search, measured on gallery samples used
as queries (each never its own neighbour), reaches `target_recall`; that recall is stored and
reported, never assumed. Distances are recomputed exactly for the neighbours FAISS returns, so
an answer's distances and same/different verdicts are exactly those of the exact path.
"""

import math

import numpy as np
import torch
from torch import Tensor

from siamese.core.errors import in_range, one_of
from siamese.metrics.knn import gallery_neighbours

KINDS = ("auto", "exact", "ivf", "hnsw")
AUTO_MIN = 50_000
IVF_MIN = 200_000
HNSW_M = 32  # graph degree: FAISS's usual choice for 64-256 dimensions
IVF_POINTS_PER_CELL, IVF_ROUNDS = 50, 10
RECALL_QUERIES = 1000


def faiss_module():
    try:
        import faiss
    except ImportError:
        raise ImportError(
            "approximate search needs FAISS: pip install 'siamese[faiss]' (faiss-cpu), or "
            "build the index with approximate=exact"
        ) from None
    return faiss


def choose_kind(kind: str, n: int) -> str:
    one_of("approximate", kind, KINDS)
    if kind != "auto":
        return kind
    return "exact" if n < AUTO_MIN else "hnsw" if n < IVF_MIN else "ivf"


def _vectors(x: Tensor, distance: str) -> np.ndarray:
    x = x.float()
    if distance == "cosine":  # inner product of unit vectors: the same order as 1 − cos
        x = torch.nn.functional.normalize(x, dim=1)
    return np.ascontiguousarray(x.numpy(), dtype=np.float32)


class Approximate:
    """A FAISS index over a gallery's embeddings and its tuned search knob."""

    def __init__(self, index, kind: str, knob: int, recall: float, k: int):
        self.index, self.kind, self.knob, self.recall, self.k = index, kind, knob, recall, k
        self._set_knob(knob)

    def _set_knob(self, knob: int) -> None:
        if self.kind == "ivf":
            self.index.nprobe = knob
        else:
            self.index.hnsw.efSearch = knob

    @classmethod
    def build(
        cls,
        embeddings: Tensor,
        distance: str,
        kind: str,
        target_recall: float = 0.95,
        k: int = 10,
        seed: int = 0,
    ) -> "Approximate":
        one_of("approximate", kind, ("ivf", "hnsw"))
        in_range("target_recall", target_recall, 0.0, 1.0)
        faiss = faiss_module()
        x = _vectors(embeddings, distance)
        n, dim = x.shape
        metric = faiss.METRIC_L2 if distance == "euclidean" else faiss.METRIC_INNER_PRODUCT
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, HNSW_M, metric)
            knobs = [16, 32, 64, 128, 256, 512, 1024]
        else:
            # 2·√n cells, k-means on 50 points a cell (FAISS wants 39 at least), 10 rounds:
            # 1M images train in seconds, not the minutes of 4·√n cells and 256 points a cell
            cells = max(1, min(n // 39, int(2 * math.sqrt(n))))
            index = faiss.IndexIVFFlat(faiss.IndexFlat(dim, metric), dim, cells, metric)
            index.cp.seed, index.cp.niter = seed, IVF_ROUNDS
            index.train(x[_sample(n, IVF_POINTS_PER_CELL * cells, seed)])
            knobs = [2**i for i in range(int(math.log2(cells)) + 1)] + [cells]
        index.add(x)
        built = cls(index, kind, knobs[0], 0.0, k)
        built.tune(embeddings, distance, knobs, target_recall, seed)
        return built

    def tune(self, embeddings, distance, knobs, target_recall, seed) -> None:
        """The smallest knob whose recall@k reaches the target (else the largest tried)."""
        ids = torch.from_numpy(_sample(len(embeddings), RECALL_QUERIES, seed))
        queries = embeddings[ids].float()
        k = min(self.k, len(embeddings) - 1)
        exact = torch.cat(
            [b for _, b in gallery_neighbours(queries, embeddings.float(), distance, k, None, ids)]
        )
        for knob in knobs:
            self._set_knob(knob)
            found = self.search(queries, k + 1, distance)
            found = [
                [j for j in row if j != i][:k]
                for i, row in zip(ids.tolist(), found.tolist(), strict=True)
            ]
            hits = sum(len(set(f) & set(e)) for f, e in zip(found, exact.tolist(), strict=True))
            self.knob, self.recall = knob, hits / (len(ids) * max(k, 1))
            if self.recall >= target_recall:
                return

    def search(self, queries: Tensor, k: int, distance: str) -> Tensor:
        """(Q, k) gallery rows, nearest first by FAISS; -1 where it found fewer than k."""
        _, found = self.index.search(_vectors(queries, distance), k)
        return torch.from_numpy(found).long()

    def state(self) -> dict:
        faiss = faiss_module()
        data = torch.from_numpy(faiss.serialize_index(self.index))
        return {
            "kind": self.kind,
            "knob": self.knob,
            "recall": self.recall,
            "k": self.k,
            "faiss": data,
        }

    @classmethod
    def from_state(cls, state: dict) -> "Approximate":
        faiss = faiss_module()
        index = faiss.deserialize_index(state["faiss"].numpy())
        return cls(index, state["kind"], int(state["knob"]), float(state["recall"]), state["k"])

    def describe(self) -> str:
        knob = "nprobe" if self.kind == "ivf" else "efSearch"
        return f"FAISS {self.kind.upper()} ({knob} {self.knob}): recall@{self.k} {self.recall:.3f}"


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, size=min(size, n), replace=False))
