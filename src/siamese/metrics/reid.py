"""Query/gallery evaluation, the re-identification protocol: each query ranks the whole gallery
(a separate set of samples; a sample may be both, and is then never its own match).

For a query of class c, rel(i) = 1 when the i-th nearest gallery sample is of class c and
R = the number of gallery samples of class c (itself left out):
- CMC@k = fraction of queries with rel(i) = 1 for some i ≤ k (the cumulative match curve at k);
- AP = (1/R) Σ_{i=1..G} P(i)·rel(i) over the whole ranking, P(i) the precision among the i
  nearest; mAP its mean over queries.
Queries with R = 0 (no gallery sample of their class) are left out of both, as re-identification
benchmarks do (Market-1501's evaluation, torchreid, OML's `is_query`/`is_gallery` manifests).
"""

from collections.abc import Sequence

import torch
from torch import Tensor

from siamese.core.distances import check_distance
from siamese.metrics.knn import gallery_neighbours

# the whole gallery is ranked for AP: queries per block so that a block holds this many ranks
_RANKS_PER_BLOCK = 2**22


def reid_metrics(
    embeddings: Tensor,
    labels: Tensor,
    is_query: Tensor,
    is_gallery: Tensor,
    ks: Sequence[int] = (1, 5, 10),
    distance: str = "euclidean",
) -> dict[str, float]:
    """{"cmc_at_{k}" for k in ks, "map"} of the `is_query` samples ranking the `is_gallery` ones
    (N,) bool each, exact (ties in distance broken in torch.topk's order)."""
    check_distance(distance)
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {tuple(ks)}")
    if not (is_query.shape == is_gallery.shape == labels.shape == embeddings.shape[:1]):
        raise ValueError(
            f"embeddings (N, D), labels, is_query and is_gallery (N,) must agree in N, got "
            f"{tuple(embeddings.shape)}, {tuple(labels.shape)}, {tuple(is_query.shape)}, "
            f"{tuple(is_gallery.shape)}"
        )
    with torch.inference_mode():
        return _reid_metrics(embeddings.float(), labels, is_query, is_gallery, ks, distance)


def _reid_metrics(x, labels, is_query, is_gallery, ks, distance) -> dict[str, float]:
    device = x.device
    labels, is_query, is_gallery = (t.to(device) for t in (labels, is_query, is_gallery))
    queries, gallery = torch.nonzero(is_query).flatten(), torch.nonzero(is_gallery).flatten()
    # a query's own position in the gallery, -1 when it is no gallery sample
    position = torch.full_like(labels, -1)
    position[gallery] = torch.arange(gallery.numel(), device=device)
    own = position[queries]
    same_class = torch.bincount(labels[gallery], minlength=int(labels.max()) + 1)
    r = same_class[labels[queries]] - (own >= 0).long()
    valid = r > 0
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise ValueError(
            f"none of the {queries.numel()} queries has a gallery sample of its class "
            f"({gallery.numel()} gallery samples): query/gallery evaluation is undefined"
        )
    queries, own, r = queries[valid], own[valid], r[valid]
    top_ks = sorted(set(ks))
    hits = torch.zeros(len(top_ks), dtype=torch.long, device=device)
    ap_sum = torch.zeros((), dtype=torch.float64, device=device)
    n_g = gallery.numel()
    chunk = max(1, _RANKS_PER_BLOCK // n_g)
    for start, nearest in gallery_neighbours(
        x[queries], x[gallery], distance, n_g, chunk, exclude=own
    ):
        q = slice(start, start + nearest.shape[0])
        rel = labels[gallery[nearest]] == labels[queries[q]].unsqueeze(1)
        rel &= nearest != own[q].unsqueeze(1)  # the query itself, ranked last, is no match
        for j, k in enumerate(top_ks):
            hits[j] += rel[:, :k].any(1).sum()
        rank = torch.arange(1, n_g + 1, device=device)
        precision = rel.cumsum(1, dtype=torch.float64) / rank
        ap_sum += ((precision * rel).sum(1, dtype=torch.float64) / r[q]).sum()
    cmc = {k: h / n_valid for k, h in zip(top_ks, hits.tolist(), strict=True)}
    return {**{f"cmc_at_{k}": cmc[k] for k in ks}, "map": float(ap_sum) / n_valid}
