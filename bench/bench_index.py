"""Image search at scale: exact search against FAISS (IVF, HNSW) on synthetic embeddings, and
indexing image files against the demo's one-file-at-a-time decoding.

    python bench/bench_index.py [--sizes 10000 100000 1000000] [--dim 128] [--queries 1000]
                                [--hnsw-max 100000] [--images 2000] [--json]

Per gallery size N (clustered synthetic embeddings, as a trained model's are) and method, in its
own subprocess (so that its peak RSS, getrusage's ru_maxrss, is its own): the build time (FAISS:
training, adding, and tuning its knob to recall@10 ≥ 0.95 against exact search), queries/s for a
batch of --queries queries and for queries one at a time (as the service gets them), recall@10
against exact search on those queries, and the q/s ratio against exact search in the same run.
HNSW runs up to --hnsw-max (its build is the slow part). The images part writes --images PNGs of
105×105 grey pixels (Omniglot's size) and embeds them with a small TorchScript model two ways: one
file at a time (how `search` decoded a gallery before the index) and `embed_files` (chunks decoded
on worker threads while the previous chunk embeds).
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from siamese.gallery.approximate import Approximate
from siamese.gallery.nearest import Searcher
from siamese.gallery.store import GalleryIndex

K, SINGLE = 10, 200  # neighbours; queries timed one at a time


def embeddings(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    """Clusters of about 20 around random centres, noise so that neighbours are not trivial."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(max(1, n // 20), dim, generator=g)
    labels = torch.randint(0, len(centres), (n,), generator=g)
    return centres[labels] + 0.7 * torch.randn(n, dim, generator=g)


def case(n: int, dim: int, n_queries: int, method: str) -> dict:
    x = embeddings(n, dim)
    queries = x[torch.randint(0, n, (n_queries,), generator=torch.Generator().manual_seed(1))]
    queries = queries + 0.1 * torch.randn(queries.shape, generator=torch.Generator().manual_seed(2))
    index = GalleryIndex(Path("/g"), [str(i) for i in range(n)], torch.zeros(n), torch.zeros(n),
                         x, {"distance": "euclidean"}, settings={})  # fmt: skip
    start = time.perf_counter()
    if method != "exact":
        index.approximate = Approximate.build(x, "euclidean", method, 0.95).state()
    build_s = time.perf_counter() - start
    searcher = Searcher(index)
    start = time.perf_counter()
    rows, _ = searcher.nearest(queries, K)
    batch_s = time.perf_counter() - start
    start = time.perf_counter()
    for q in queries[:SINGLE]:
        searcher.nearest(q.unsqueeze(0), K)
    single_s = time.perf_counter() - start
    exact, _ = Searcher(index, exact=True).nearest(queries, K)
    hits = sum(len(set(a) & set(b)) for a, b in zip(rows.tolist(), exact.tolist(), strict=True))
    return {
        "n": n,
        "method": method,
        "build_s": build_s,
        "batch_qps": n_queries / batch_s,
        "single_qps": SINGLE / single_s,
        "recall_at_10": hits / exact.numel(),
        "knob": searcher.approximate.knob if searcher.approximate else None,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


class Pooled(torch.nn.Module):
    """uint8 (N, 1, 105, 105) → (N, 64): 8×8 average pooling, a stand-in whose cost is small
    beside decoding (the point of this measurement)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(images.float().div(255), 8)
        return pooled.flatten(1)


def pooling_model(path: Path) -> Path:
    """A TorchScript export of `Pooled` with the JSON `siamese.export` writes beside a model."""
    torch.jit.script(Pooled()).save(str(path))
    meta = {"image_size": 105, "channels": 1, "distance": "euclidean", "threshold": 1.0,
            "embedding_dim": 64, "resize": "stretch"}  # fmt: skip
    path.with_name(path.name + ".json").write_text(json.dumps(meta))
    return path


def images_case(count: int) -> dict:
    """Embedding `count` image files: one at a time (the demo) against `embed_files`."""
    from PIL import Image

    from siamese.gallery.embed import embed_files
    from siamese.inference import load_images, load_model

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        g = torch.Generator().manual_seed(0)
        files = []
        for i in range(count):
            pixels = torch.randint(0, 256, (105, 105), generator=g, dtype=torch.uint8)
            files.append(folder / f"{i:05d}.png")
            Image.fromarray(pixels.numpy()).save(files[-1])
        model = load_model(pooling_model(folder / "model.pt"))
        start = time.perf_counter()
        one = torch.cat([model.embed(load_images(model, [f])) for f in files])
        one_s = time.perf_counter() - start
        start = time.perf_counter()
        batched, _ = embed_files(model, files)
        batched_s = time.perf_counter() - start
    assert torch.allclose(one, batched, atol=1e-5)
    return {"images": count, "one_at_a_time_s": one_s, "embed_files_s": batched_s}


def run_child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip
    if proc.returncode:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--hnsw-max", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs="+")
    a = parser.parse_args()
    if a.child:
        kind, *rest = a.child
        result = images_case(int(rest[0])) if kind == "images" else case(*map(int, rest), kind)
        print(json.dumps(result))
        return
    results = []
    print("| N | method | build s | batch q/s | one-at-a-time q/s | q/s / exact (batch, one) | "
          "recall@10 | knob | peak RSS MiB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for n in a.sizes:
        methods = ["exact", "ivf"] + (["hnsw"] if n <= a.hnsw_max else [])
        exact = None
        for method in methods:
            r = run_child([method, str(n), str(a.dim), str(a.queries)])
            exact = exact or r
            results.append(r)
            print(f"| {n:,} | {method} | {r['build_s']:.1f} | {r['batch_qps']:.0f} | "
                  f"{r['single_qps']:.0f} | {r['batch_qps'] / exact['batch_qps']:.2f}, "
                  f"{r['single_qps'] / exact['single_qps']:.2f} | {r['recall_at_10']:.3f} | "
                  f"{r['knob'] or '—'} | {r['peak_mib']:.0f} |", flush=True)  # fmt: skip
    if a.images:
        r = run_child(["images", str(a.images)])
        results.append(r)
        print(f"\n{r['images']} PNG files (105×105 grey): one at a time {r['one_at_a_time_s']:.1f} s, "
              f"embed_files {r['embed_files_s']:.1f} s: "
              f"{r['one_at_a_time_s'] / r['embed_files_s']:.2f}× faster")  # fmt: skip
    if a.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
