"""`python -m siamese.compare`: tune each method with the same number of trials on val, re-run each
best configuration over fresh seeds, score them on test, and write the report.

Every phase is an ordinary `siamese train -m ...` sweep (so `hydra/launcher=ray` and SLURM apply):
    tune/<method>/     siamese train -m +tune=<method> hydra.sweeper.n_trials=T ...
    confirm/<method>/  siamese train -m <the best trial's overrides> seed=s1,...,sN
                       hydra/sweeper=basic hydra.sweeper.params=null ...
"""

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime
from importlib import resources
from itertools import count, islice
from pathlib import Path

from siamese.compare.collect import COMPARE_FILE, CONFIRM, TUNE, read_config, read_method
from siamese.compare.summary import write_compare_report
from siamese.config.overrides import is_hydra, override_key

ROOT = Path("outputs") / "compare"
TRAIN = [
    "-m",
    "siamese.train",
]  # `siamese train`: the configs come with the package, any folder works
METHODS = ("sprn", "sdrn")
DROPPED = ("seed", "data.folds", "data.fold")  # a best trial's overrides the confirmation resets


class CompareError(Exception):
    """A phase could not run or left nothing to go on; the message says which and what to do."""


def new_folder(root: Path, name: str) -> Path:
    """outputs/compare/<date>_<time>_<name>/, never an existing one."""
    folder = Path(root) / f"{datetime.now():%Y-%m-%d_%H-%M-%S_%f}_{name}"
    folder.mkdir(parents=True, exist_ok=False)
    for phase in (TUNE, CONFIRM):
        (folder / phase).mkdir()
    return folder


def tune_command(python: str, method: str, folder: Path, trials: int, overrides: list[str]):
    return [
        python,
        *TRAIN,
        "-m",
        f"+tune={method}",
        *overrides,
        f"hydra.sweep.dir={folder / TUNE / method}",
        f"hydra.sweeper.n_trials={trials}",
    ]


def confirm_command(
    python: str, method: str, folder: Path, best: list[str], seeds: list[int], overrides: list[str]
) -> list[str]:
    """The best trial's own overrides (the tune file, the tuned values, the shared overrides) minus
    its seed, over the confirmation seeds with the basic sweeper; the Optuna sweeper's settings
    (hydra.sweeper.*) do not apply to it. Folds are for the search only: confirmation trains on the
    usual train split and selects its checkpoint on the usual val, so data.folds is set off."""
    job = [o for o in best if override_key(o) not in DROPPED and not is_hydra(o)]
    launcher = [
        o for o in overrides if is_hydra(o) and not override_key(o).startswith("hydra.sweeper")
    ]
    return [
        python,
        *TRAIN,
        "-m",
        *job,
        "hydra/sweeper=basic",
        "hydra.sweeper.params=null",
        *launcher,
        "data.folds=null",  # also when a config file, not an override, turned folds on
        "data.fold=0",
        f"seed={','.join(map(str, seeds))}",
        f"hydra.sweep.dir={folder / CONFIRM / method}",
    ]


def confirm_seeds(n: int, tuning_seed: int | None) -> list[int]:
    """n seeds other than the one the search trained with: the tuned run itself is not re-used."""
    return list(islice((s for s in count() if s != tuning_seed), n))


class Compare:
    def __init__(self, folder: Path, meta: dict):
        self.folder, self.meta = folder, meta
        self.save()

    def save(self) -> None:
        (self.folder / COMPARE_FILE).write_text(json.dumps(self.meta, indent=2) + "\n")

    def confirm(self, method: str, seeds: int, overrides: list[str], python: str) -> bool:
        """Re-runs the method's best trial over `seeds` fresh seeds; True when every job completed."""
        best = read_method(self.folder, method).best_trial()
        if best is None:
            raise CompareError(
                f"every trial of {method} failed: no configuration to confirm; see "
                f"{self.folder / TUNE / method}/*/metrics.json"
            )
        config = read_config(self.folder / TUNE / method / best.folder) or {}
        chosen = confirm_seeds(seeds, config.get("seed"))
        self.meta["best"][method] = {
            "trial": best.number,
            "objective": best.objective,
            "overrides": best.overrides,
            "seeds": chosen,
        }
        command = confirm_command(python, method, self.folder, best.overrides, chosen, overrides)
        return self.run(f"{CONFIRM}/{method}", command) == 0

    def run(self, phase: str, command: list[str]) -> int:
        print(f"\n== {phase}: {' '.join(command)}", flush=True)
        start = time.time()
        rc = subprocess.run(command).returncode
        self.meta["phases"][phase] = {
            "command": command,
            "returncode": rc,
            "started_at": start,
            "wall_s": time.time() - start,
        }
        self.save()
        return rc


def _check_arguments(methods: tuple[str, ...], trials: int, seeds: int) -> None:
    if len(methods) != 2 or len(set(methods)) != 2:
        raise CompareError(f"--methods needs two different methods, got {list(methods)}")
    if trials < 1 or seeds < 2:
        raise CompareError(
            f"--trials must be >= 1 and --seeds >= 2 (a 95% CI needs 2), got {trials}, {seeds}"
        )
    for method in methods:
        if not (resources.files("siamese.conf") / "tune" / f"{method}.yaml").is_file():
            raise CompareError(
                f"no src/siamese/conf/tune/{method}.yaml: give each method a search space file "
                "(see src/siamese/conf/tune/sprn.yaml)"
            )


def compare(
    name: str = "compare",
    methods: tuple[str, ...] = METHODS,
    trials: int = 50,
    seeds: int = 5,
    overrides: tuple[str, ...] = (),
    root: Path = ROOT,
    python: str = sys.executable,
) -> tuple[Path, bool]:
    """Runs the comparison from the project root; returns (its folder, every job completed)."""
    _check_arguments(methods, trials, seeds)
    folder = new_folder(root, name)
    meta = {
        "name": name,
        "methods": list(methods),
        "trials": trials,
        "seeds": seeds,
        "overrides": list(overrides),
        "phases": {},
        "best": {},
    }
    run = Compare(folder, meta)
    for method in methods:  # the same trials and shared overrides for every method
        rc = run.run(
            f"{TUNE}/{method}", tune_command(python, method, folder, trials, list(overrides))
        )
        if rc != 0:
            raise CompareError(
                f"the search of {method} exited with {rc}: see {folder / TUNE / method} and the "
                "output above (a failed trial does not stop it: this is a failure of the sweep)"
            )
    # every method is confirmed, also after one whose jobs failed
    clean = [run.confirm(method, seeds, list(overrides), python) for method in methods]
    write_compare_report(folder)
    return folder, all(clean)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m siamese.compare",
        description="Tune two methods with equal budgets on val, confirm each best over seeds on "
        "test, report.",
    )
    parser.add_argument("--name", default="compare", help="the folder's label")
    parser.add_argument(
        "--methods", default=",".join(METHODS), help="two files of src/siamese/conf/tune/"
    )
    parser.add_argument("--trials", type=int, default=50, help="search trials per method")
    parser.add_argument("--seeds", type=int, default=5, help="confirmation seeds per method")
    parser.add_argument("--root", default=str(ROOT), help="where compare folders go")
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides for every job, e.g. hydra/launcher=ray"
    )
    args = parser.parse_args(argv)
    try:
        folder, clean = compare(
            args.name,
            tuple(m for m in args.methods.split(",") if m),
            args.trials,
            args.seeds,
            tuple(args.overrides),
            Path(args.root),
        )
    except CompareError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    text = (folder / "report.md").read_text()
    print("\n".join(line for line in text.splitlines() if not line.startswith("![")).rstrip())
    print(f"\nwrote {folder}/report.md, report.csv, tuning.png")
    if not clean:
        print("error: some confirmation jobs failed (listed in the report)", file=sys.stderr)
    return 0 if clean else 1
