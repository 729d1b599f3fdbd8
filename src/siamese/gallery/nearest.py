"""The k nearest gallery images of many queries: exact by blocked matrix products (the retrieval
code's `gallery_neighbours`), or through the index's FAISS index when it has one."""

from dataclasses import dataclass

import torch
from torch import Tensor

from siamese.core.distances import pair_distance
from siamese.core.errors import at_least
from siamese.gallery.approximate import Approximate
from siamese.gallery.store import GalleryIndex
from siamese.metrics.knn import gallery_neighbours, ranking


@dataclass
class Match:
    query: str
    rank: int  # 1 = nearest
    file: str  # the gallery image, as the index names it (under its folder)
    distance: float
    same: bool  # distance < τ: the same class, as `verify` decides
    row: int  # the gallery image's row in the index

    def record(self) -> dict:
        """The table's columns."""
        return {
            "query": self.query,
            "rank": self.rank,
            "file": self.file,
            "distance": self.distance,
            "same": self.same,
        }


class Searcher:
    """Search one index; `exact=True` ignores its FAISS index."""

    def __init__(self, index: GalleryIndex, exact: bool = False):
        self.index = index
        self.embeddings = index.embeddings.float()  # float16 indexes are searched in float32
        use = index.approximate is not None and not exact
        self.approximate = Approximate.from_state(index.approximate) if use else None
        # the exact search's pass over the whole gallery, once, not per query
        self.ranked = None if use else ranking(self.embeddings, index.distance)

    @property
    def method(self) -> str:
        return "exact" if self.approximate is None else self.approximate.describe()

    def nearest(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """(rows (Q, k'), distances (Q, k')) of the k' = min(k, gallery size) nearest, nearest
        first; distances exact, as `verify` computes them. An approximate row FAISS could not
        fill holds -1 at an infinite distance."""
        at_least("k", k, 1)
        queries = queries.float()
        distance = self.index.distance
        k = min(k, len(self.embeddings))
        with torch.inference_mode():
            if self.approximate is None:
                blocks = gallery_neighbours(
                    queries, self.embeddings, distance, k, ranked=self.ranked
                )
                rows = torch.cat([b for _, b in blocks])
            else:
                rows = self.approximate.search(queries, k, distance)
            found = self.embeddings[rows.clamp(min=0)]
            d = pair_distance(queries.unsqueeze(1), found, distance)
            d = d.masked_fill(rows < 0, float("inf"))
            # ranked by the distances reported: the ranking's (or FAISS's) own rounding may
            # order near ties the other way
            d, order = d.sort(dim=1, stable=True)
            rows = rows.gather(1, order)
        return rows, d

    def matches(self, names: list[str], queries: Tensor, k: int, tau: float) -> list[Match]:
        """Every query's k nearest as `Match`es, query by query, nearest first."""
        rows, d = self.nearest(queries, k)
        out = []
        for name, row, dist in zip(names, rows.tolist(), d.tolist(), strict=True):
            for rank, (i, di) in enumerate(zip(row, dist, strict=True), start=1):
                if i >= 0:
                    out.append(Match(name, rank, self.index.files[i], di, di < tau, i))
        return out
