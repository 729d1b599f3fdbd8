"""The training step with and without the allocator setting (`speed.keep_freed_memory`), each
in its own process, with the process's user/sys CPU split and peak memory.

    python bench/bench_memory.py [--rounds 1] [--steps 20] [--warmup 5] [--jemalloc PATH]
                                 [--json] [overrides ...]       (default: data.image_size=64)

Every variant runs `bench/bench_step.py --threads 1` (the loop, Lightning and barebones on the
same batches) in a fresh process; the variants alternate over --rounds, rotating their order,
and the CPU times come from the kernel's accounting of each child (what /usr/bin/time reports).
Variants: plain (`speed.keep_freed_memory=false`: glibc's own thresholds), keep (`true`, the
default); with --each the plain one with keep's settings through glibc's environment variables,
read when the process starts (env: both; mmap: MALLOC_MMAP_THRESHOLD_ alone; trim:
MALLOC_TRIM_THRESHOLD_ alone); with
--jemalloc PATH the plain one under jemalloc (`LD_PRELOAD=PATH`, decay off) for comparison.
sys time is the kernel's: unmapping freed activations and zero-filling them again at the next
step is where the plain step spends it. Steps/s: the best round; CPU times: the mean of rounds.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from siamese.core.memory import MMAP_THRESHOLD, TRIM_THRESHOLD

STEP = Path(__file__).resolve().parent / "bench_step.py"
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"


def run_child(overrides: list[str], args, env: dict[str, str]) -> dict:
    cmd = [sys.executable, str(STEP), "--json", "--threads", "1", "--repeat", "1"]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup), *overrides]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, env={**os.environ, **env}, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {child.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "steps_per_s": result["steps_per_s"],
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "max_rss_mib": usage.ru_maxrss / 1024,  # Linux reports KiB
        "losses_agree": result["same_losses_5_decimals"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--jemalloc", default=None, help="path of libjemalloc.so.2 (optional)")
    p.add_argument("--each", action="store_true", help="also each of keep's settings alone")
    p.add_argument("--json", action="store_true")
    p.add_argument("overrides", nargs="*", default=["data.image_size=64"])
    args = p.parse_args()
    variants = {
        "plain": (["speed.keep_freed_memory=false"], {}),
        "keep": (["speed.keep_freed_memory=true"], {}),
    }
    plain = ["speed.keep_freed_memory=false"]
    if args.each:
        mmap = {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}
        trim = {"MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)}
        variants |= {"env": (plain, mmap | trim), "mmap": (plain, mmap), "trim": (plain, trim)}
    if args.jemalloc:
        env = {"LD_PRELOAD": args.jemalloc, "MALLOC_CONF": JEMALLOC_CONF}
        variants["jemalloc"] = (["speed.keep_freed_memory=false"], env)
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for i in range(args.rounds):
        names = list(variants)[i % len(variants) :] + list(variants)[: i % len(variants)]
        for name in names:
            extra, env = variants[name]
            runs[name].append(run_child([*args.overrides, *extra], args, env))
    best = {}
    for name, rounds in runs.items():
        best[name] = max(rounds, key=lambda x: x["steps_per_s"]["loop"]) | {
            k: sum(r[k] for r in rounds) / len(rounds) for k in ("user_s", "sys_s", "max_rss_mib")
        }
    base = best["plain"]["steps_per_s"]
    for r in best.values():
        r["x_plain"] = {k: v / base[k] for k, v in r["steps_per_s"].items()}
    if args.json:
        print(json.dumps({"overrides": args.overrides, "steps": args.steps, "best": best}))
        return
    print(f"bench_step.py --threads 1, {args.steps} steps after {args.warmup}, {args.overrides}")
    print(
        f"  {'variant':<9} {'loop/s':>7} {'x plain':>7} {'Lightning/s':>11} {'x plain':>7}", end=""
    )
    print(f" {'user s':>7} {'sys s':>6} {'max RSS MiB':>11}")
    for name, r in best.items():
        s, x = r["steps_per_s"], r["x_plain"]
        print(f"  {name:<9} {s['loop']:7.3f} {x['loop']:7.3f} {s['lightning']:11.3f}", end="")
        print(
            f" {x['lightning']:7.3f} {r['user_s']:7.1f} {r['sys_s']:6.1f} {r['max_rss_mib']:11.0f}"
        )


if __name__ == "__main__":
    main()
