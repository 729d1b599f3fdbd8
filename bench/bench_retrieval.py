"""retrieval_metrics against its previous version and a naive full N×N matrix: time, peak memory.

"new" is retrieval_metrics as called (method auto: the grouped search on a CPU from N = 20,000),
"direct" the same with method="direct" (every query against all N), so the grouped search's gain
is direct / new.

    python bench/bench_retrieval.py [--sizes 10000 50000 100000] [--dim 128] [--repeat 1] [--json]
                                    [--device cuda]

Each configuration runs in its own subprocess, which reports its own peak RSS
(getrusage(RUSAGE_SELF).ru_maxrss), so one run's memory never leaks into another's figure.
Peak RSS includes the interpreter, torch and the embeddings; the "data MiB" column is that floor
(a subprocess that only builds the data). "old" is the implementation before issue 15 (kept
below as the baseline); new, direct and old alternate, --repeat times each, and the best time of each
is kept, so a shared machine's load hits both alike. The naive method runs only where its N×N
float32 matrix fits in --naive-budget-gib.
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from siamese.core.distances import distance_matrix
from siamese.metrics import retrieval_metrics
from siamese.metrics.retrieval import average_precision_at_r

KS = (1, 2, 4, 8)


def make_data(n: int, dim: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian clusters around random centres; noise chosen so retrieval is neither 0 nor 1."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g)
    labels = torch.randint(0, classes, (n,), generator=g)
    return centres[labels] + 1.5 * torch.randn(n, dim, generator=g), labels


def old_metrics(x: torch.Tensor, labels: torch.Tensor, chunk_size: int) -> dict[str, float]:
    """retrieval_metrics as it was before issue 15 (commit 1458dd5): a fresh distance block per
    chunk with ‖x‖² added and clamped, a host sync per chunk for its k, queries in index order."""
    _, cls, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    r = counts[cls] - 1
    queries = torch.nonzero(r > 0).squeeze(1)
    k_max = min(max(KS), x.shape[0] - 1)
    hits = torch.zeros(len(KS), dtype=torch.long)
    ap_sum = torch.zeros((), dtype=torch.float64)
    for start in range(0, queries.numel(), chunk_size):
        q = queries[start : start + chunk_size]
        d = distance_matrix(x[q], x, "euclidean", squared=True)
        d[torch.arange(q.numel()), q] = float("inf")
        r_q = r[q]
        k = max(k_max, int(r_q.max()))
        nearest = d.topk(k, dim=1, largest=False, sorted=True).indices
        del d
        rel = cls[nearest] == cls[q].unsqueeze(1)
        for j, top in enumerate(KS):
            hits[j] += rel[:, :top].any(1).sum()
        ap_sum += average_precision_at_r(rel, r_q).sum()
    n_q = queries.numel()
    out = {"p_at_1": hits[0].item() / n_q}
    out |= {f"recall_at_{k}": h / n_q for k, h in zip(KS, hits.tolist(), strict=True)}
    out["map_at_r"] = float(ap_sum) / n_q
    return out


def naive_metrics(emb: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """The textbook way: the whole N×N matrix, then top-k of every row at once."""
    _, cls, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    r = counts[cls] - 1
    d = torch.cdist(emb, emb)
    d.fill_diagonal_(float("inf"))
    k = max(max(KS), int(r.max()))
    nearest = d.topk(k, dim=1, largest=False).indices
    del d
    keep = r > 0
    rel = (cls[nearest] == cls.unsqueeze(1))[keep]
    r = r[keep]
    out = {"p_at_1": rel[:, 0].double().mean().item()}
    out |= {f"recall_at_{k}": rel[:, :k].any(1).double().mean().item() for k in KS}
    rank = torch.arange(1, k + 1)
    rel_r = (rel & (rank <= r.unsqueeze(1))).double()
    out["map_at_r"] = ((rel_r.cumsum(1) / rank * rel_r).sum(1) / r).mean().item()
    return out


def worker(args: argparse.Namespace) -> None:
    emb, labels = make_data(args.n, args.dim, args.classes, args.seed)
    emb, labels = emb.to(args.device), labels.to(args.device)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    if args.worker == "new":
        metrics = retrieval_metrics(emb, labels, KS, chunk_size=args.chunk_size)
    elif args.worker == "direct":
        metrics = retrieval_metrics(emb, labels, KS, chunk_size=args.chunk_size, method="direct")
    elif args.worker == "old":
        metrics = old_metrics(emb, labels, args.chunk_size or 1024)
    elif args.worker == "naive":
        metrics = naive_metrics(emb, labels)
    else:
        metrics = {}
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if args.device.startswith("cuda"):  # the device's peak is the figure that matters there
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib, "metrics": metrics}))


def run(method: str, n: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, "--n", str(n), "--dim", str(args.dim)]
    cmd += ["--classes", str(args.classes), "--seed", str(args.seed), "--device", args.device]
    if args.chunk_size:
        cmd += ["--chunk-size", str(args.chunk_size)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def best(results: list[dict]) -> dict:
    return min(results, key=lambda res: res["seconds"])


def max_diff(a: dict, b: dict) -> float:
    return max(abs(a[k] - b[k]) for k in b)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument(
        "--chunk-size", type=int, default=None, help="default: automatic (new), 1024 (old)"
    )
    p.add_argument("--repeat", type=int, default=1, help="old/new runs each, alternating")
    p.add_argument("--naive-budget-gib", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, or cuda (peak memory is then the GPU's)")
    p.add_argument(
        "--json", action="store_true", help="one JSON object per size instead of a table"
    )
    p.add_argument(
        "--worker", choices=["new", "direct", "old", "naive", "data"], help=argparse.SUPPRESS
    )
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    if not args.json:
        print(
            f"dim={args.dim} classes={args.classes} chunk_size={args.chunk_size or 'auto'} "
            f"torch threads={torch.get_num_threads()} repeat={args.repeat} "
            f"naive budget={args.naive_budget_gib} GiB"
        )
        head = (
            f"{'N':>7} | {'new s':>7} | {'direct s':>8} | {'dir/new':>7} | {'old s':>7} | "
            f"{'old/new':>7} | {'naive s':>7} | {'new MiB':>7} | {'direct MiB':>10} | "
            f"{'old MiB':>7} | {'naive MiB':>9} | {'data MiB':>8} | {'p_at_1':>7} | "
            "max |diff| direct, old, naive"
        )
        print(head)
        print("-" * len(head))
    for n in args.sizes:
        data = run("data", n, args)
        runs = {"new": [], "direct": [], "old": []}
        for _ in range(args.repeat):
            for method in runs:
                runs[method].append(run(method, n, args))
        new, direct, old = best(runs["new"]), best(runs["direct"]), best(runs["old"])
        naive = None
        if n * n * 4 / 2**30 <= args.naive_budget_gib:
            naive = run("naive", n, args)
        row = {
            "n": n,
            "new_s": new["seconds"],
            "direct_s": direct["seconds"],
            "direct_over_new": direct["seconds"] / new["seconds"],
            "old_s": old["seconds"],
            "old_over_new": old["seconds"] / new["seconds"],
            "naive_s": naive["seconds"] if naive else None,
            "new_peak_mib": new["peak_mib"],
            "direct_peak_mib": direct["peak_mib"],
            "old_peak_mib": old["peak_mib"],
            "naive_peak_mib": naive["peak_mib"] if naive else None,
            "data_peak_mib": data["peak_mib"],
            "metrics": new["metrics"],
            "max_diff_direct": max_diff(new["metrics"], direct["metrics"]),
            "max_diff_old": max_diff(new["metrics"], old["metrics"]),
            "max_diff_naive": max_diff(new["metrics"], naive["metrics"]) if naive else None,
        }
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        na_s = f"{row['naive_s']:7.2f}" if naive else f"{'-':>7}"
        na_m = f"{row['naive_peak_mib']:9.0f}" if naive else f"{'-':>9}"
        na_d = f"{row['max_diff_naive']:.1e}" if naive else "-"
        print(
            f"{n:>7} | {new['seconds']:7.2f} | {direct['seconds']:8.2f} | "
            f"{row['direct_over_new']:7.2f} | {old['seconds']:7.2f} | {row['old_over_new']:7.2f} | "
            f"{na_s} | {new['peak_mib']:7.0f} | {direct['peak_mib']:10.0f} | "
            f"{old['peak_mib']:7.0f} | {na_m} | {data['peak_mib']:8.0f} | "
            f"{new['metrics']['p_at_1']:7.4f} | {row['max_diff_direct']:.1e}, "
            f"{row['max_diff_old']:.1e}, {na_d}",
            flush=True,
        )


if __name__ == "__main__":
    main()
