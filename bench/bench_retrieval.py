"""Chunked retrieval_metrics against a naive full N×N distance matrix: time and peak memory.

    python bench/bench_retrieval.py [--sizes 10000 50000 100000] [--dim 128]

Each configuration runs in its own subprocess, which reports its own peak RSS
(getrusage(RUSAGE_SELF).ru_maxrss), so one run's memory never leaks into another's figure.
Peak RSS includes the interpreter, torch and the embeddings; the "data MiB" column is that floor
(a subprocess that only builds the data). The naive method runs only where its N×N float32
matrix fits in --naive-budget-gib.
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from siamese.metrics import retrieval_metrics

KS = (1, 2, 4, 8)


def make_data(n: int, dim: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian clusters around random centres; noise chosen so retrieval is neither 0 nor 1."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g)
    labels = torch.randint(0, classes, (n,), generator=g)
    return centres[labels] + 1.5 * torch.randn(n, dim, generator=g), labels


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
    t0 = time.perf_counter()
    if args.worker == "chunked":
        metrics = retrieval_metrics(emb, labels, KS, chunk_size=args.chunk_size)
    elif args.worker == "naive":
        metrics = naive_metrics(emb, labels)
    else:
        metrics = {}
    seconds = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib, "metrics": metrics}))


def run(method: str, n: int, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        method,
        "--n",
        str(n),
        "--dim",
        str(args.dim),
        "--classes",
        str(args.classes),
        "--seed",
        str(args.seed),
        "--chunk-size",
        str(args.chunk_size),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--chunk-size", type=int, default=1024)
    p.add_argument("--naive-budget-gib", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", choices=["chunked", "naive", "data"], help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    print(
        f"dim={args.dim} classes={args.classes} chunk_size={args.chunk_size} "
        f"torch threads={torch.get_num_threads()} naive budget={args.naive_budget_gib} GiB"
    )
    head = (
        f"{'N':>7} | {'chunked s':>9} | {'naive s':>9} | {'time c/n':>8} | "
        f"{'chunked MiB':>11} | {'naive MiB':>9} | {'mem c/n':>7} | {'data MiB':>8} | "
        f"{'p_at_1':>7} | same"
    )
    print(head)
    print("-" * len(head))
    for n in args.sizes:
        base = run("data", n, args)
        chunked = run("chunked", n, args)
        need_gib = n * n * 4 / 2**30
        c_s, c_m = chunked["seconds"], chunked["peak_mib"]
        if need_gib <= args.naive_budget_gib:
            naive = run("naive", n, args)
            n_s, n_m = naive["seconds"], naive["peak_mib"]
            diff = max(abs(chunked["metrics"][k] - naive["metrics"][k]) for k in naive["metrics"])
            same = "yes" if chunked["metrics"]["p_at_1"] == naive["metrics"]["p_at_1"] else "NO"
            same += f" (max |diff| all metrics {diff:.1e})"
            cols = f"{n_s:9.2f} | {c_s / n_s:8.2f} | {c_m:11.0f} | {n_m:9.0f} | {c_m / n_m:7.2f}"
        else:
            skip = f"skipped (needs {need_gib:.1f} GiB)"
            cols = f"{skip:>31} | {c_m:11.0f} | {'-':>9} | {'-':>7}"
            same = "-"
        print(
            f"{n:>7} | {c_s:9.2f} | {cols} | {base['peak_mib']:8.0f} | "
            f"{chunked['metrics']['p_at_1']:7.4f} | {same}",
            flush=True,
        )


if __name__ == "__main__":
    main()
