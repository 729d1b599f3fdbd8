"""Retrieval metrics (Musgrave, Belongie, Lim 2020, "A Metric Learning Reality Check")."""

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor

from siamese.core.distances import Distance, check_distance
from siamese.metrics.knn import Method, self_neighbours


class Reranker(Protocol):
    """Reorders each query's neighbours: queries (Q,), nearest first (Q, M) → (Q, M); retrieval
    hands it at least `k` neighbours per query (siamese.metrics.scoring.Rerank)."""

    k: int

    def __call__(self, queries: Tensor, nearest: Tensor) -> Tensor: ...


def retrieval_metrics(
    embeddings: Tensor,
    labels: Tensor,
    ks: Sequence[int] = (1, 2, 4, 8),
    distance: Distance = "euclidean",
    chunk_size: int | None = None,
    method: Method = "auto",
    rerank: Reranker | None = None,
) -> dict[str, float]:
    """{"p_at_1", "recall_at_{k}" for k in ks, "map_at_r"} with every sample used as a query.

    The query itself is never one of its neighbours. For a query of class c, R = number of other
    samples of class c and rel(i) = 1 when its i-th nearest neighbour is of class c:
    - Recall@K = fraction of queries with rel(i) = 1 for some i ≤ K; P@1 = Recall@1.
    - MAP@R = mean over queries of (1/R) Σ_{i=1..R} P(i)·rel(i), with P(i) the precision among
      the i nearest.
    Queries whose class has no other sample (R = 0) are excluded from every metric.

    method="direct": queries are processed `chunk_size` at a time against all N samples (None:
    1024 on a CPU, on a GPU as many as a quarter of its free memory holds): memory is
    O(N·chunk_size + chunk_size·R_max), never N×N. Everything stays on the embeddings' device
    and only the final numbers come back (one host sync for the chunk plan, one for the result).
    method="grouped": the same neighbours from half the distance products (it is symmetric),
    in blocks of `chunk_size` rows; memory O(N·chunk_size + N·(k + 512)), k = max(ks, R_max).
    "auto" takes "grouped" on a CPU from N = 20,000 (when k·32·8 ≤ N), else "direct"; "grouped"
    itself falls back to "direct" where there are not more groups of 32 than k.
    Neighbours come from torch.topk; exact ties in distance are broken in its (unspecified but
    repeatable) order, and the two methods round distances differently, so a near tie (within
    float rounding) may break the other way.

    `rerank`, if given, reorders each query's neighbours before they are scored.
    """
    check_distance(distance)
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"embeddings must be (N, D) and labels (N,), got {tuple(embeddings.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {tuple(ks)}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 or None (automatic), got {chunk_size}")
    if method not in ("auto", "direct", "grouped"):
        raise ValueError(f"method must be auto, direct or grouped, got {method!r}")
    with torch.inference_mode():
        return _retrieval_metrics(
            embeddings, labels, tuple(ks), distance, chunk_size, method, rerank
        )


def _retrieval_metrics(
    embeddings: Tensor,
    labels: Tensor,
    ks: tuple[int, ...],
    distance: str,
    chunk_size: int | None,
    method: str,
    rerank: Reranker | None,
) -> dict[str, float]:
    x = embeddings.detach()
    if x.dtype != torch.float64:
        x = x.float()  # half precision would reorder near neighbours
    device = x.device
    labels = labels.detach().to(device)
    n = x.shape[0]
    _, cls, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    r = counts[cls] - 1
    # queries by ascending R: each chunk's top-k needs only max(k_max, its own largest R)
    r_sorted, order = torch.sort(r, stable=True)
    first = int(torch.searchsorted(r_sorted, 1))  # one sync: skip the R = 0 queries
    queries, r_queries = order[first:], r_sorted[first:]
    n_q = queries.numel()
    if n_q == 0:
        raise ValueError("no query has another sample of its class: retrieval is undefined")

    k_max = min(max(*ks, rerank.k if rerank is not None else 0), n - 1)
    blocks = self_neighbours(x, distance, queries, r_queries, k_max, chunk_size, method)

    top_ks = sorted(set(ks) | {1})
    hits = torch.zeros(len(top_ks), dtype=torch.long, device=device)
    ap_sum = torch.zeros((), dtype=torch.float64, device=device)
    for q, r_q, nearest_q in blocks:
        if rerank is not None:
            nearest_q = rerank(q, nearest_q)
        rel = cls[nearest_q] == cls[q].unsqueeze(1)
        for j, top in enumerate(top_ks):
            hits[j] += rel[:, :top].any(1).sum()
        ap_sum += average_precision_at_r(rel, r_q).sum()

    recall = {top: h / n_q for top, h in zip(top_ks, hits.tolist(), strict=True)}
    out = {"p_at_1": recall[1]}
    out |= {f"recall_at_{top}": recall[top] for top in ks}
    out["map_at_r"] = float(ap_sum) / n_q
    return out


def average_precision_at_r(rel: Tensor, r: Tensor) -> Tensor:
    """AP@R per query: rel (Q, k) bool relevance of the k ≥ R nearest, r (Q,) R of each query.

    AP@R = (1/R) Σ_{i=1..R} P(i)·rel(i), P(i) = (Σ_{j≤i} rel(j)) / i.
    """
    rank = torch.arange(1, rel.shape[1] + 1, device=rel.device)
    rel_r = (rel & (rank <= r.unsqueeze(1))).double()
    precision = rel_r.cumsum(1) / rank
    return (precision * rel_r).sum(1) / r
