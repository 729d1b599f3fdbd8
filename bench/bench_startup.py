"""Start-up cost: import time of siamese.run.job and the wall time of a one-step tiny run.

    python bench/bench_startup.py [--repeat 3] [--without torchvision scipy matplotlib] [--json]

- import: `python -X importtime -c "import siamese.run.job"` (sum of every module's own time, and
  the heaviest imports with what pulled them in), and the plain wall time of that import minus an
  empty interpreter's;
- run: `python train.py` on tiny data for one training step (val and test still run), no logger.
--without PKG... repeats both as if those packages were not installed (a copy of site-packages
made of links, leaving them and their metadata out, run with `python -S`): what a slimmer
install would save. Baseline and variant alternate, --repeat times each; the best is kept.
"""

import argparse
import json
import os
import re
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "debug=tiny",
    "data.steps_per_epoch=1",
    "logger=none",
]  # src/siamese/conf/debug/tiny.yaml, one step
LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def without_site(names: list[str], into: Path) -> Path:
    """A site-packages made of links to the real one, minus `names` (modules and metadata)."""
    real = Path(site.getsitepackages()[0])
    farm = into / "site-packages"
    farm.mkdir()
    drop = {n.lower().replace("-", "_") for n in names}
    for entry in real.iterdir():
        stem = entry.name.split("-")[0].lower().replace("-", "_")
        if stem.removesuffix(".py") in drop:
            continue
        (farm / entry.name).symlink_to(entry)
    return farm


def environment(farm: Path | None) -> tuple[list[str], dict]:
    env = dict(os.environ)
    path = [str(ROOT / "src")]
    if farm is None:
        return [sys.executable], env | {"PYTHONPATH": os.pathsep.join(path)}
    # -S: no site-packages of the venv; the farm stands in for it
    return [sys.executable, "-S"], env | {"PYTHONPATH": os.pathsep.join([*path, str(farm)])}


def import_profile(python: list[str], env: dict) -> dict:
    done = subprocess.run(
        [*python, "-X", "importtime", "-c", "import siamese.run.job"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []  # (self µs, cumulative µs, depth, name)
    for line in done.stderr.splitlines():
        m = LINE.match(line)
        if m:
            rows.append((int(m[1]), int(m[2]), len(m[3]) // 2, m[4]))
    # importtime prints a module after its children: the parent of a row is the next row
    # printed with a smaller depth
    parents = {}
    for i, (_, _, depth, name) in enumerate(rows):
        for _, _, d2, n2 in rows[i + 1 :]:
            if d2 < depth:
                parents.setdefault(name, n2)
                break
    heavy = {}
    for root in ("torchmetrics", "torchvision", "torch._dynamo", "scipy", "matplotlib", "sympy"):
        hits = [r for r in rows if r[3] == root or r[3].startswith(root + ".")]
        if hits:
            top = min(hits, key=lambda r: (r[2], -r[1]))  # the outermost: its parent pulled it in
            heavy[root] = {"cumulative_s": top[1] / 1e6, "imported_by": parents.get(top[3])}
    return {"sum_self_s": sum(r[0] for r in rows) / 1e6, "heavy": heavy}


def wall(cmd: list[str], env: dict, cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


# each line imports one more layer: the differences say what each layer adds
LAYERS = {
    "torch": "import torch",
    "+ torch._dynamo": "import torch._dynamo",
    "+ torchmetrics": "import torchmetrics",
    "+ pytorch_lightning": "import pytorch_lightning",
    "+ hydra": "import hydra.utils, hydra.core.hydra_config",
    "+ siamese.run.job": "import siamese.run.job",
}


def measure(python: list[str], env: dict, run_dir: Path) -> dict:
    empty = wall([*python, "-c", "pass"], env)
    imports = wall([*python, "-c", "import siamese.run.job"], env) - empty
    layers, code = {}, []
    for name, line in LAYERS.items():
        code.append(line)
        layers[name] = wall([*python, "-c", "; ".join(code)], env) - empty
    run = wall([*python, str(ROOT / "train.py"), *TINY, f"hydra.run.dir={run_dir}"], env, cwd=ROOT)
    profile = import_profile(python, env)
    return {"import_wall_s": imports, "one_step_run_s": run, "layers_s": layers} | profile


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--without", nargs="*", default=[], help="packages to leave out (variant)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        variants = {"installed": environment(None)}
        if args.without:
            variants["without " + " ".join(args.without)] = environment(
                without_site(args.without, tmp)
            )
        results = {name: [] for name in variants}
        for i in range(args.repeat):
            for v, (name, (python, env)) in enumerate(variants.items()):
                results[name].append(measure(python, env, tmp / f"run{i}_{v}"))
    out = {}
    for name, runs in results.items():
        fastest = min(runs, key=lambda r: r["one_step_run_s"])
        out[name] = fastest | {
            "import_wall_s": min(r["import_wall_s"] for r in runs),
            "sum_self_s": min(r["sum_self_s"] for r in runs),
            "layers_s": {k: min(r["layers_s"][k] for r in runs) for k in LAYERS},
        }
    if args.json:
        print(json.dumps(out))
        return
    print(f"best of {args.repeat}; python {sys.version.split()[0]}; cores {os.cpu_count()}")
    for name, r in out.items():
        print(
            f"{name}: import wall {r['import_wall_s']:.2f} s (importtime sum "
            f"{r['sum_self_s']:.2f} s), one-step tiny run {r['one_step_run_s']:.2f} s"
        )
        print("    cumulative import wall (best):", end="")
        print(", ".join(f" {k} {v:.2f} s" for k, v in r["layers_s"].items()))
        for root, h in r["heavy"].items():
            print(f"    {root:<14} {h['cumulative_s']:6.2f} s  imported by {h['imported_by']}")


if __name__ == "__main__":
    main()
