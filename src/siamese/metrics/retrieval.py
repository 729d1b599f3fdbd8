"""Retrieval metrics (Musgrave, Belongie, Lim 2020, "A Metric Learning Reality Check")."""

from collections.abc import Sequence

import torch
from torch import Tensor

from siamese.distances import Distance, check_distance

# auto chunk on a GPU: the (chunk, N) score block takes at most this share of free memory
_GPU_MEMORY_SHARE = 0.25
_CPU_CHUNK = 1024  # on 2 cores the matmul ran as fast as with 2048-4096 rows, in less memory
_MAX_CHUNK = 16384


def retrieval_metrics(
    embeddings: Tensor,
    labels: Tensor,
    ks: Sequence[int] = (1, 2, 4, 8),
    distance: Distance = "euclidean",
    chunk_size: int | None = None,
) -> dict[str, float]:
    """{"p_at_1", "recall_at_{k}" for k in ks, "map_at_r"} with every sample used as a query.

    The query itself is never one of its neighbours. For a query of class c, R = number of other
    samples of class c and rel(i) = 1 when its i-th nearest neighbour is of class c:
    - Recall@K = fraction of queries with rel(i) = 1 for some i ≤ K; P@1 = Recall@1.
    - MAP@R = mean over queries of (1/R) Σ_{i=1..R} P(i)·rel(i), with P(i) the precision among
      the i nearest.
    Queries whose class has no other sample (R = 0) are excluded from every metric.

    Queries are processed `chunk_size` at a time against all N samples (None: 1024 on a CPU, on
    a GPU as many as a quarter of its free memory holds): memory is O(N·chunk_size +
    chunk_size·R_max), never N×N. Neighbours come from torch.topk; exact ties in distance are
    broken in its (unspecified but repeatable) order. Everything stays on the embeddings' device
    and only the final numbers come back (one host sync for the chunk plan, one for the result).
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
    with torch.inference_mode():
        return _retrieval_metrics(embeddings, labels, tuple(ks), distance, chunk_size)


def _retrieval_metrics(
    embeddings: Tensor, labels: Tensor, ks: tuple[int, ...], distance: str, chunk_size: int | None
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

    chunk = chunk_size or _auto_chunk(n, x)
    starts = list(range(0, n_q, chunk))
    ends = [min(s + chunk, n_q) for s in starts]
    k_max = min(max(ks), n - 1)
    # the chunk plan in one transfer: R ≤ N − 1, so k never exceeds the other samples
    chunk_r = r_queries[torch.tensor(ends, device=device) - 1].tolist()

    # ranking scores, smaller = nearer, with the same order as the distance: euclidean
    # ‖y‖² − 2x·y (the query's ‖x‖² and the clamp at 0 shift a row but never reorder it, and
    # skipping them saves two passes over the block); cosine −x̂·ŷ (1 − x̂·ŷ, minus the 1)
    if distance == "euclidean":
        y, bias, alpha = x, x.pow(2).sum(1).unsqueeze(0), -2.0
    else:
        y = torch.nn.functional.normalize(x, dim=1)
        bias, alpha = torch.zeros(1, n, dtype=x.dtype, device=device), -1.0
    # one block reused by every chunk: a fresh (chunk, N) allocation costs page faults each time
    block = torch.empty(min(chunk, n_q), n, dtype=x.dtype, device=device)

    top_ks = sorted(set(ks) | {1})
    hits = torch.zeros(len(top_ks), dtype=torch.long, device=device)
    ap_sum = torch.zeros((), dtype=torch.float64, device=device)
    for start, end, r_last in zip(starts, ends, chunk_r, strict=True):
        q, r_q = queries[start:end], r_queries[start:end]
        d = block[: end - start]
        torch.addmm(bias, y[q], y.T, alpha=alpha, out=d)
        d[torch.arange(end - start, device=device), q] = float("inf")
        k = max(k_max, r_last)
        nearest = d.topk(k, dim=1, largest=False, sorted=True).indices
        rel = cls[nearest] == cls[q].unsqueeze(1)
        for j, top in enumerate(top_ks):
            hits[j] += rel[:, :top].any(1).sum()
        ap_sum += average_precision_at_r(rel, r_q).sum()

    recall = {top: h / n_q for top, h in zip(top_ks, hits.tolist(), strict=True)}
    out = {"p_at_1": recall[1]}
    out |= {f"recall_at_{top}": recall[top] for top in ks}
    out["map_at_r"] = float(ap_sum) / n_q
    return out


def _auto_chunk(n: int, x: Tensor) -> int:
    if x.device.type != "cuda":
        return _CPU_CHUNK
    free, _ = torch.cuda.mem_get_info(x.device)
    rows = int(free * _GPU_MEMORY_SHARE) // (n * x.element_size())
    return max(1, min(rows, _MAX_CHUNK))


def average_precision_at_r(rel: Tensor, r: Tensor) -> Tensor:
    """AP@R per query: rel (Q, k) bool relevance of the k ≥ R nearest, r (Q,) R of each query.

    AP@R = (1/R) Σ_{i=1..R} P(i)·rel(i), P(i) = (Σ_{j≤i} rel(j)) / i.
    """
    rank = torch.arange(1, rel.shape[1] + 1, device=rel.device)
    rel_r = (rel & (rank <= r.unsqueeze(1))).double()
    precision = rel_r.cumsum(1) / rank
    return (precision * rel_r).sum(1) / r
