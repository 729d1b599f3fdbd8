"""Wall time of an 8-job quick sweep: Hydra's basic launcher (one job after the other) against the
Ray launcher running 2 jobs at a time, measured in the same run; prints the ratio.

    python bench/bench_sweep.py [--jobs 8] [--parallel 2] [--gpus 0]

With --gpus N (a GPU machine) it instead compares 1 job per GPU with 2 jobs per GPU.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["debug=quick", "trainer.max_epochs=1", "logger=none"]  # conf/debug/quick.yaml


def timed_sweep(jobs: int, launcher: list[str], workdir: Path) -> float:
    seeds = ",".join(str(s) for s in range(jobs))
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        *QUICK,
        f"seed={seeds}",
        f"hydra.sweep.dir={workdir / 'sweep'}",
        *launcher,
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
    done = len(list((workdir / "sweep").glob("*/metrics.json")))
    if done != jobs:
        raise SystemExit(f"expected {jobs} finished jobs, found {done}")
    return elapsed


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
    args = parser.parse_args()
    temp = tempfile.mkdtemp(prefix="bench", dir="/tmp")  # short: Ray's socket paths are limited
    try:
        rows = []
        if args.gpus:
            cases = [
                ("ray, 1 job per GPU", ray(64, args.gpus, 1.0, temp)),
                ("ray, 2 jobs per GPU", ray(64, args.gpus, 0.5, temp)),
            ]
        else:
            cases = [
                ("basic (sequential)", []),
                (f"ray, {args.parallel} at a time", ray(args.parallel, temp=temp)),
            ]
        for name, launcher in cases:
            work = Path(tempfile.mkdtemp(dir=temp))
            rows.append((name, timed_sweep(args.jobs, launcher, work)))
        base = rows[0][1]
        print(f"{args.jobs}-job quick sweep, {os.cpu_count()} CPUs")
        print(f"{'launcher':26s} {'wall s':>8s} {'ratio to first':>15s}")
        for name, seconds in rows:
            print(f"{name:26s} {seconds:8.1f} {seconds / base:15.2f}")
    finally:
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
