"""The neighbour search of retrieval: for every query, its nearest samples of the same set (the
query itself excluded), exact, in blocks of queries so that memory stays O(N · block); and of
queries among a separate gallery (`gallery_neighbours`: image search, query/gallery evaluation).

Two methods give the same neighbours: "direct" scores each block of queries against all N;
"grouped" uses the symmetry of the distance matrix to compute half of it (see `grouped`).
"""

from collections.abc import Iterator
from typing import Literal

import torch
from torch import Tensor

# auto chunk on a GPU: the (chunk, N) score block takes at most this share of free memory
_GPU_MEMORY_SHARE = 0.25
_CPU_CHUNK = 1024  # on 2 cores the matmul ran as fast as with 2048-4096 rows, in less memory
_MAX_CHUNK = 16384
# the grouped search (half the product, see `grouped`): groups of 32 samples (the row
# minima over groups of 16 ran 5× slower on the CPU); used by "auto" on a CPU from this N, where
# it measured faster than the direct search (bench/bench_retrieval.py), and with ≥ 8 groups per
# neighbour sought (fewer would make most groups candidates)
_GROUP = 32
_GROUPED_MIN_N = 20_000
_GROUPS_PER_NEIGHBOUR = 8
_ROWS_PER_PASS = 16384
# the query-vs-gallery search's automatic block: at most this many scores (256 MiB in float32),
# so that 1,000 queries against 1M images take blocks of 64, not a 4 GB one
_GALLERY_BLOCK = 2**26

Method = Literal["auto", "direct", "grouped"]
Blocks = Iterator[tuple[Tensor, Tensor, Tensor]]  # (queries, their R, their nearest)


def self_neighbours(
    x: Tensor,
    distance: str,
    queries: Tensor,
    r_queries: Tensor,
    k_max: int,
    chunk_size: int | None = None,
    method: Method = "auto",
) -> Blocks:
    """(queries, their R, their nearest) block by block: the max(k_max, R) nearest of each query
    among the rows of x (N, D), itself excluded. Queries come sorted by R.

    "auto" takes "grouped" on a CPU from N = 20,000 (when k·32·8 ≤ N), else "direct"; "grouped"
    itself falls back to "direct" where there are not more groups of 32 than k."""
    n, device = x.shape[0], x.device
    chunk = chunk_size or _auto_chunk(n, x)
    y, bias = ranking(x, distance)
    auto = method == "auto"
    if auto:
        method = "grouped" if device.type == "cpu" and n >= _GROUPED_MIN_N else "direct"
    if method == "grouped":
        # not more groups than neighbours sought: every group would be a candidate
        k = max(k_max, int(r_queries[-1]))
        if -(-n // _GROUP) < (k * _GROUPS_PER_NEIGHBOUR if auto else k + 1):
            method = "direct"
    if method == "grouped":
        return grouped(y, bias, queries, r_queries, k_max, k, _GROUP, chunk)
    return direct(y, bias, queries, r_queries, k_max, chunk)


def ranking(x: Tensor, distance: str) -> tuple[Tensor, Tensor]:
    """(y, bias) whose score bias_c − 2·q·y_c ranks the rows c of x as the distance from a query
    q does (smaller = nearer): euclidean ‖y‖² − 2x·y (the query's ‖x‖² and the clamp at 0 shift
    a row but never reorder it, and skipping them saves two passes over the block); cosine −x̂·ŷ
    (1 − x̂·ŷ, minus the 1), the query normalised too."""
    if distance == "euclidean":
        return x, x.pow(2).sum(1)
    y = torch.nn.functional.normalize(x, dim=1)
    return y, torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)


def gallery_neighbours(
    queries: Tensor,
    gallery: Tensor,
    distance: str,
    k: int,
    chunk_size: int | None = None,
    exclude: Tensor | None = None,
    ranked: tuple[Tensor, Tensor] | None = None,
) -> Iterator[tuple[int, Tensor]]:
    """(start, nearest) block by block: the k nearest rows of `gallery` (G, D) of the queries
    [start, start + len(nearest)) of `queries` (Q, D), nearest first, exact, memory
    O(G · chunk). `exclude` (Q,) names a gallery row each query may not match (the query itself,
    when it is in the gallery too), -1 for none; it comes last, at an infinite score. `ranked`:
    `ranking(gallery, distance)` computed once for many calls (a pass over the whole gallery)."""
    n_q, n_g = queries.shape[0], gallery.shape[0]
    k = min(k, n_g)
    chunk = chunk_size or max(1, min(_auto_chunk(n_g, gallery), _GALLERY_BLOCK // n_g))
    y, bias = ranked or ranking(gallery, distance)
    q_all = queries if distance == "euclidean" else torch.nn.functional.normalize(queries, dim=1)
    block = torch.empty(min(chunk, n_q), n_g, dtype=y.dtype, device=y.device)
    for start in range(0, n_q, chunk):
        end = min(start + chunk, n_q)
        d = block[: end - start]
        torch.addmm(bias.unsqueeze(0), q_all[start:end], y.T, alpha=-2.0, out=d)
        if exclude is not None:
            rows = torch.nonzero(exclude[start:end] >= 0).flatten()
            d[rows, exclude[start:end][rows]] = float("inf")
        yield start, d.topk(k, dim=1, largest=False, sorted=True).indices


def direct(
    y: Tensor, bias: Tensor, queries: Tensor, r_queries: Tensor, k_max: int, chunk: int
) -> Blocks:
    """(queries, their R, their nearest) chunk by chunk, each chunk scored against all N.

    Queries come sorted by R, so each chunk's top-k needs only max(k_max, its own largest R).
    """
    n_q, n, device = queries.numel(), y.shape[0], y.device
    starts = list(range(0, n_q, chunk))
    ends = [min(s + chunk, n_q) for s in starts]
    # the chunk plan in one transfer: R ≤ N − 1, so k never exceeds the other samples
    chunk_r = r_queries[torch.tensor(ends, device=device) - 1].tolist()
    bias = bias.unsqueeze(0)
    # one block reused by every chunk: a fresh (chunk, N) allocation costs page faults each time
    block = torch.empty(min(chunk, n_q), n, dtype=y.dtype, device=device)
    for start, end, r_last in zip(starts, ends, chunk_r, strict=True):
        q = queries[start:end]
        d = block[: end - start]
        torch.addmm(bias, y[q], y.T, alpha=-2.0, out=d)
        d[torch.arange(end - start, device=device), q] = float("inf")
        k = max(k_max, r_last)
        yield q, r_queries[start:end], d.topk(k, dim=1, largest=False, sorted=True).indices


def _auto_chunk(n: int, x: Tensor) -> int:
    if x.device.type != "cuda":
        return _CPU_CHUNK
    free, _ = torch.cuda.mem_get_info(x.device)
    rows = int(free * _GPU_MEMORY_SHARE) // (n * x.element_size())
    return max(1, min(rows, _MAX_CHUNK))


def grouped(
    y: Tensor,
    bias: Tensor,
    queries: Tensor,
    r_queries: Tensor,
    k_max: int,
    k: int,
    group: int,
    panel: int,
    pending: int = 512,
) -> Blocks:
    """(queries, their R, their nearest) pass by pass, from half of the distance matrix; k is the
    most neighbours any query needs, max(k_max, largest R).

    d(r, c) = b_r + b_c − 2·y_r·y_c is symmetric, so each block of rows [s, e) is computed
    against columns ≥ s only (half the product). The columns are cut into groups of `group`
    consecutive samples; every row keeps the k groups with the smallest minimum it has seen,
    from its own block's rows (row minima) and from earlier blocks' columns (column minima, by
    symmetry). The k nearest of a row lie in its k groups of smallest minimum: any sample nearer
    than the k-th smallest group minimum lies in a group whose minimum is smaller still. A second
    pass scores those candidates exactly (`_exact_among_groups`), queries sorted by R so that
    each pass takes only the groups its largest k needs.
    """
    n = y.shape[0]
    n_pad = -(-n // group) * group
    # one product gives d whole: [y, b, 1]·[−2y, 1, b] = b_r + b_c − 2 y_r·y_c
    ones = torch.ones_like(bias).unsqueeze(1)
    a = torch.cat([y, bias.unsqueeze(1), ones], 1)
    b = torch.cat([-2.0 * y, ones, bias.unsqueeze(1)], 1)
    a = torch.nn.functional.pad(a, (0, 0, 0, n_pad - n))
    b = torch.nn.functional.pad(b, (0, 0, 0, n_pad - n))
    best_group = _best_groups(a, b, n, k, group, panel, pending)
    for start in range(0, queries.numel(), _ROWS_PER_PASS):
        q, r_q = queries[start : start + _ROWS_PER_PASS], r_queries[start : start + _ROWS_PER_PASS]
        k_pass = max(k_max, int(r_q[-1]))
        yield q, r_q, _exact_among_groups(a, b, q, best_group[q, :k_pass], n, k_pass, group)


def _best_groups(a: Tensor, b: Tensor, n: int, k: int, group: int, panel: int, pending: int):
    """(n_pad, k) per row the ids of its k groups of smallest minimum, nearest first: the first
    pass of `grouped`, block by block over half of the product a·bᵀ."""
    n_pad = a.shape[0]
    panel = max(group, panel // group * group)
    pending = max(pending, panel // group)
    inf = float("inf")
    # per row: its k smallest group minima so far (first k columns), then minima not yet merged
    minima = torch.full((n_pad, k + pending), inf, dtype=a.dtype, device=a.device)
    best_group = torch.zeros((n_pad, k), dtype=torch.long, device=a.device)
    pending_group = torch.zeros(pending, dtype=torch.long, device=a.device)
    filled = 0
    groups = torch.arange(n_pad // group, device=a.device)
    buffer = torch.empty(min(panel, n_pad) * n_pad, dtype=a.dtype, device=a.device)
    for s in range(0, n_pad, panel):
        e = min(s + panel, n_pad)
        h, w = e - s, n_pad - s
        d = buffer[: h * w].view(h, w)
        torch.mm(a[s:e], b[s:].T, out=d)
        d.diagonal().fill_(inf)  # the query itself is never its neighbour
        if n < n_pad:  # the padding is nobody's neighbour (n − s > 0: s steps by ≥ group)
            d[:, n - s :] = inf
            d[n - s :] = inf
        first = s // group
        # this block's rows: every group is now seen (earlier ones through earlier columns);
        # sorted, so that a query needing fewer than k neighbours takes the first groups only
        seen = torch.cat([minima[s:e, : k + filled], d.view(h, w // group, group).amin(2)], 1)
        at = seen.topk(k, 1, largest=False, sorted=True).indices
        best_group[s:e] = _group_ids(at, best_group[s:e], pending_group[:filled], groups[first:])
        if e == n_pad:
            break
        # the rows below learn this block's groups from its columns
        new = h // group
        if filled + new > pending:
            _merge_pending(minima[e:], best_group[e:], pending_group[:filled])
            filled = 0
        minima[e:, k + filled : k + filled + new] = d.view(new, group, w).amin(1)[:, h:].T
        pending_group[filled : filled + new] = groups[first : first + new]
        filled += new
    return best_group


def _group_ids(at: Tensor, best: Tensor, pending: Tensor, fresh: Tensor) -> Tensor:
    """Group ids of positions `at` in the columns [best (rows, k) | pending (p,) | fresh (f,)]."""
    k = best.shape[1]
    shared = torch.cat([pending, fresh])
    from_shared = shared[(at - k).clamp(min=0, max=shared.numel() - 1)]
    return torch.where(at < k, best.gather(1, at.clamp(max=k - 1)), from_shared)


def _merge_pending(minima: Tensor, best_group: Tensor, pending_group: Tensor) -> None:
    """Fold the pending minima of these rows into their k smallest (in place)."""
    k = best_group.shape[1]
    width = k + pending_group.numel()
    for s in range(0, len(minima), _ROWS_PER_PASS):  # a slice at a time: bounded temporaries
        rows = slice(s, s + _ROWS_PER_PASS)
        values, at = minima[rows, :width].topk(k, 1, largest=False, sorted=False)
        best_group[rows] = _group_ids(at, best_group[rows], pending_group, pending_group[:0])
        minima[rows, :k] = values
        minima[rows, k:width] = float("inf")


def _exact_among_groups(
    a: Tensor, b: Tensor, rows: Tensor, chosen: Tensor, n: int, k: int, group: int
) -> Tensor:
    """The k nearest (len(rows), k) of `rows` among the samples of their chosen groups.

    Pairs (row, group) are sorted by group so that each group's samples are scored against all
    the rows that chose it in one product (reading a row per pair, not a group per row).
    """
    k_groups = chosen.shape[1]
    b_groups = b.view(-1, group, b.shape[1])
    last = b_groups.shape[0] - 1
    flat = chosen.flatten()
    order = torch.argsort(flat)
    pair_rows = rows[order // k_groups]
    scores_sorted = torch.empty(order.numel(), group, dtype=a.dtype, device=a.device)
    start = 0
    for g, count in enumerate(torch.bincount(flat, minlength=last + 1).tolist()):
        if count:
            end = start + count
            torch.mm(a[pair_rows[start:end]], b_groups[g].T, out=scores_sorted[start:end])
            start = end
    scores = torch.empty_like(scores_sorted)
    scores[order] = scores_sorted
    scores = scores.view(len(rows), k_groups, group)
    inf = float("inf")
    i, slot = torch.nonzero(chosen == (rows // group).unsqueeze(1), as_tuple=True)
    scores[i, slot, rows[i] % group] = inf  # the query itself
    if n % group:
        i, slot = torch.nonzero(chosen == last, as_tuple=True)
        scores[i, slot, n % group :] = inf  # the padding
    at = scores.view(len(rows), -1).topk(k, 1, largest=False, sorted=True).indices
    return chosen.gather(1, at // group) * group + at % group
