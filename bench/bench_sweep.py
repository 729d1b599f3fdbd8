"""Wall time of a sweep, per launcher setting, measured in the same run; prints ratios and each
job's own overhead (its wall time less its fit: start-up, data, the untrained baseline, test).

    python bench/bench_sweep.py [--jobs 8] [--parallel 2]
    python bench/bench_sweep.py --gpus 1 [--per-gpu 1 2 4 8] [--grid] [overrides ...]

On the CPU: Hydra's basic launcher (one job after the other) against the Ray launcher running
--parallel jobs at a time, on an 8-job quick sweep. With --gpus N: the Ray launcher with 1, 2, 4
and 8 jobs per GPU (trainer=gpu); --grid runs the real SPRN vs SDRN grid (24 jobs, `make sweep`)
instead of the quick one.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["debug=quick", "trainer.max_epochs=1", "logger=none"]  # src/siamese/conf/debug/quick.yaml


def timed_sweep(
    jobs: int, launcher: list[str], workdir: Path, grid: bool = False, extra: list[str] = ()
) -> tuple[float, float, int]:
    """(wall s, mean per-job overhead s, jobs done)."""
    what = ["+sweep=sprn_vs_sdrn"] if grid else [*QUICK, f"seed={','.join(map(str, range(jobs)))}"]
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        *what,
        f"hydra.sweep.dir={workdir / 'sweep'}",
        *launcher,
        *extra,
    ]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    records = [json.loads(p.read_text()) for p in (workdir / "sweep").glob("*/metrics.json")]
    if len(records) != (24 if grid else jobs):
        raise SystemExit(f"expected {24 if grid else jobs} finished jobs, found {len(records)}")
    overhead = [r["times"]["total_s"] - r["times"]["fit_s"] for r in records]
    return elapsed, sum(overhead) / len(overhead), len(records)


def ray(parallel_cpus: int, gpus: int = 0, gpus_per_job: float = 0, temp: str = "") -> list[str]:
    args = [
        "hydra/launcher=ray",
        f"hydra.launcher.ray.init.num_cpus={parallel_cpus}",
        f"+hydra.launcher.ray.init._temp_dir={temp}",
    ]
    if gpus:
        args += [
            "trainer=gpu",
            f"hydra.launcher.ray.init.num_gpus={gpus}",
            f"hydra.launcher.ray.remote.num_gpus={gpus_per_job}",
        ]
    return args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--gpus", type=int, default=0)
    parser.add_argument("--per-gpu", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--grid", action="store_true", help="the 24-job SPRN vs SDRN grid")
    parser.add_argument("overrides", nargs="*", help="applied to every job")
    args = parser.parse_args()
    temp = tempfile.mkdtemp(prefix="bench", dir="/tmp")  # short: Ray's socket paths are limited
    try:
        rows = []
        if args.gpus:
            cpus = os.cpu_count() or 1
            cases = [
                (
                    f"ray, {k} job(s) per GPU",
                    [
                        *ray(cpus, args.gpus, 1.0 / k, temp),
                        f"hydra.launcher.ray.remote.num_cpus={max(1, cpus // (k * args.gpus))}",
                    ],
                )
                for k in args.per_gpu
            ]
        else:
            cases = [
                ("basic (sequential)", []),
                (f"ray, {args.parallel} at a time", ray(args.parallel, temp=temp)),
            ]
        for name, launcher in cases:
            work = Path(tempfile.mkdtemp(dir=temp))
            rows.append((name, *timed_sweep(args.jobs, launcher, work, args.grid, args.overrides)))
        base = rows[0][1]
        kind = "SPRN vs SDRN grid" if args.grid else "quick sweep"
        print(f"{rows[0][3]}-job {kind}, {os.cpu_count()} CPUs, {args.gpus} GPU(s)")
        print(
            f"{'launcher':26s} {'wall s':>8s} {'ratio to first':>15s} {'per-job overhead s':>19s}"
        )
        for name, seconds, overhead, _ in rows:
            print(f"{name:26s} {seconds:8.1f} {seconds / base:15.2f} {overhead:19.1f}")
    finally:
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
