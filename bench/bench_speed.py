"""The speed options against the plain step, in one run: steps/s of each as a ratio of the
baseline's, on the device of the config's trainer (trainer=gpu: the GPU, with its precision).

    python bench/bench_speed.py [--steps 60] [--warmup 10] [--repeat 3] [--variants ...] [--json]
                                [overrides ...]

Each variant is the baseline config plus its overrides: fused (optimizer.fused=true),
channels_last (speed.channels_last=true), compile (speed.compile=true), compile_graphs
(speed.compile=true speed.compile_mode=reduce-overhead: CUDA graphs, GPU only) and all (every
one of them that the device has). Every run trains afresh from the same seed through the
hand-written loop of bench_step.py (the option's effect on the step, without Lightning's fixed
cost); the warm-up steps (compilation included) are timed apart. Variants alternate --repeat
times; the fastest of each is kept. The losses are compared with the baseline's: an option that
changed what is trained would show there (fused kernels and other memory orders round
differently, so they agree to about 1e-5, not exactly).
"""

import argparse
import json
import logging
import time
import warnings

import torch
from bench_step import make, run_loop

VARIANTS = {
    "baseline": [],
    "fused": ["optimizer.fused=true"],
    "channels_last": ["speed.channels_last=true"],
    "compile": ["speed.compile=true"],
    "compile_graphs": ["speed.compile=true", "speed.compile_mode=reduce-overhead"],
}


def run(overrides: list[str], steps: int, warmup: int) -> dict:
    cfg, datamodule, module = make(overrides, warmup + steps)
    t0 = time.perf_counter()
    result = run_loop(module, datamodule, warmup, cfg.trainer)
    result["total_s"] = time.perf_counter() - t0
    result["warmup_s"] = result["total_s"] - result["step_s"] * steps
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=10, help="steps before timing (compiles here)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--variants", nargs="+", choices=[*VARIANTS, "all"], default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. trainer=gpu")
    args = p.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")

    gpu = any(o in ("trainer=gpu", "trainer=ddp") for o in args.overrides)
    names = args.variants or (
        ["fused", "channels_last", "compile", "compile_graphs", "all"]
        if gpu
        else ["fused", "channels_last", "all"]
    )
    options = {"baseline": []} | {n: VARIANTS[n] for n in names if n != "all"}
    if "all" in names:
        every = [n for n in ("fused", "channels_last", "compile", "compile_graphs") if n in options]
        # compile_graphs includes compile: its mode wins
        options["all"] = [o for n in every for o in VARIANTS[n]]
    results = {name: [] for name in options}
    for i in range(args.repeat):
        order = list(options)[i % len(options) :] + list(options)[: i % len(options)]
        for name in order:
            results[name].append(run([*args.overrides, *options[name]], args.steps, args.warmup))
    best = {name: min(runs, key=lambda r: r["step_s"]) for name, runs in results.items()}
    ref = torch.tensor(best["baseline"]["losses"])
    out = {
        name: {
            "steps_per_s": 1 / r["step_s"],
            "speedup": best["baseline"]["step_s"] / r["step_s"],
            "warmup_s": r["warmup_s"],
            "max_loss_diff": float((torch.tensor(r["losses"]) - ref).abs().max()),
            "overrides": options[name],
        }
        for name, r in best.items()
    }
    if args.json:
        print(json.dumps({"variants": out, "overrides": args.overrides, "steps": args.steps}))
        return
    print(f"{args.steps} timed steps after {args.warmup}, best of {args.repeat}: {args.overrides}")
    for name, r in out.items():
        print(
            f"  {name:<15} {r['steps_per_s']:8.2f} steps/s  x{r['speedup']:.3f} of baseline  "
            f"warm-up {r['warmup_s']:6.1f} s  max |loss diff| {r['max_loss_diff']:.1e}"
        )


if __name__ == "__main__":
    main()
