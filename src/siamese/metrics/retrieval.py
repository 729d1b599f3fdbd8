"""Retrieval metrics (Musgrave, Belongie, Lim 2020, "A Metric Learning Reality Check")."""

from collections.abc import Sequence

import torch
from torch import Tensor

from siamese.distances import Distance, check_distance, distance_matrix


def retrieval_metrics(
    embeddings: Tensor,
    labels: Tensor,
    ks: Sequence[int] = (1, 2, 4, 8),
    distance: Distance = "euclidean",
    chunk_size: int = 1024,
) -> dict[str, float]:
    """{"p_at_1", "recall_at_{k}" for k in ks, "map_at_r"} with every sample used as a query.

    The query itself is never one of its neighbours. For a query of class c, R = number of other
    samples of class c and rel(i) = 1 when its i-th nearest neighbour is of class c:
    - Recall@K = fraction of queries with rel(i) = 1 for some i ≤ K; P@1 = Recall@1.
    - MAP@R = mean over queries of (1/R) Σ_{i=1..R} P(i)·rel(i), with P(i) the precision among
      the i nearest.
    Queries whose class has no other sample (R = 0) are excluded from every metric.

    Queries are processed `chunk_size` at a time against all N samples: memory is
    O(N·chunk_size + chunk_size·R_max), never N×N. Neighbours come from torch.topk; exact ties in
    distance are broken in its (unspecified but repeatable) order.
    """
    check_distance(distance)
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"embeddings must be (N, D) and labels (N,), got {tuple(embeddings.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {tuple(ks)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")

    x = embeddings.detach()
    if x.dtype != torch.float64:
        x = x.float()  # half precision would reorder near neighbours
    labels = labels.detach().to(x.device)
    n = x.shape[0]
    _, cls, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    r = counts[cls] - 1
    queries = torch.nonzero(r > 0).squeeze(1)
    if queries.numel() == 0:
        raise ValueError("no query has another sample of its class: retrieval is undefined")

    k_max = min(max(ks), n - 1)
    top_ks = sorted(set(ks) | {1})
    hits = torch.zeros(len(top_ks), dtype=torch.long, device=x.device)
    ap_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    # squared euclidean ranks the same as euclidean and skips a sqrt over the whole block
    squared = distance == "euclidean"
    for start in range(0, queries.numel(), chunk_size):
        q = queries[start : start + chunk_size]
        d = distance_matrix(x[q], x, distance, squared=squared)
        d[torch.arange(q.numel(), device=x.device), q] = float("inf")
        r_q = r[q]
        k = max(k_max, int(r_q.max()))  # R ≤ N − 1, so k never exceeds the other samples
        nearest = d.topk(k, dim=1, largest=False, sorted=True).indices
        del d
        rel = cls[nearest] == cls[q].unsqueeze(1)
        for j, top in enumerate(top_ks):
            hits[j] += rel[:, :top].any(1).sum()
        ap_sum += average_precision_at_r(rel, r_q).sum()

    n_q = queries.numel()
    recall = {top: float(h) / n_q for top, h in zip(top_ks, hits.tolist(), strict=True)}
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
