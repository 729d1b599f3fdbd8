"""The jobs of a Hydra multirun folder, read from their metrics.json: completed, failed, missing."""

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from siamese.config.overrides import split_seed
from siamese.run.record import COMPLETED, FAILED, MISSING, read_summary

HYDRA_OVERRIDES = Path(".hydra") / "overrides.yaml"
SWEEPS_ROOT = Path("outputs") / "sweeps"


class SweepError(Exception):
    """The folder is not a sweep the report can read: the message says which and why."""


@dataclass
class Job:
    folder: Path
    status: str
    cell: tuple[str, ...] | None  # the job's overrides but its seed, sorted by key; None: unknown
    seed: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    problem: str = ""  # why it failed or is missing, on one line
    seconds: float = 0.0  # its own wall time; 0 when it never recorded an ending

    @property
    def number(self) -> int:
        return int(self.folder.name)


def _hydra_overrides(folder: Path) -> list[str] | None:
    path = folder / HYDRA_OVERRIDES
    try:
        overrides = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return [str(o) for o in overrides] if isinstance(overrides, list) else None


def read_job(folder: Path) -> Job:
    run = read_summary(folder)
    # Hydra's own copy of the overrides, for a job that died before its record said them
    overrides = run.overrides if run.overrides is not None else _hydra_overrides(folder)
    cell, seed = split_seed(overrides)
    seed = run.seed if run.seed is not None else seed  # the resolved one, not the sweep's
    seconds = run.times.get("total_s", 0.0)
    return Job(folder, run.status, cell, seed, run.metrics, run.problem, seconds)


def job_folders(sweep_dir: Path, allow_none: bool = False) -> list[Path]:
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise SweepError(f"sweep folder {sweep_dir} does not exist")
    folders = sorted(
        (p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()),
        key=lambda p: int(p.name),
    )
    if not folders and not allow_none:
        raise SweepError(
            f"{sweep_dir} has no job folders (0/, 1/, ...): is it a Hydra multirun folder?"
        )
    return folders


def collect(sweep_dir: Path) -> tuple[list[Job], list[Job], list[Job]]:
    """(completed, failed, missing) jobs, each list in job-number order. With a multirun.yaml,
    every job of its grid counts: one that never started (no folder) is missing."""
    grid = sweep_grid(sweep_dir)
    jobs = {int(f.name): read_job(f) for f in job_folders(sweep_dir, allow_none=bool(grid))}
    for number, overrides in enumerate(grid or []):
        if number not in jobs:
            folder = Path(sweep_dir) / str(number)
            jobs[number] = Job(folder, MISSING, *split_seed(overrides), problem="never started")
    ordered = [jobs[n] for n in sorted(jobs)]
    return tuple([j for j in ordered if j.status == s] for s in (COMPLETED, FAILED, MISSING))


def latest_sweep(root: Path = SWEEPS_ROOT) -> Path:
    """The most recently modified folder under outputs/sweeps/."""
    sweeps = [p for p in Path(root).glob("*") if p.is_dir()] if Path(root).is_dir() else []
    if not sweeps:
        raise SweepError(f"no sweep folder under {root}/: run a sweep first, or pass SWEEP_DIR")
    return max(sweeps, key=lambda p: p.stat().st_mtime)


def _multirun_hydra(sweep_dir: Path) -> dict:
    hydra = yaml.safe_load((Path(sweep_dir) / "multirun.yaml").read_text())["hydra"]
    if not isinstance(hydra, dict):
        raise TypeError("multirun.yaml: hydra is not a mapping")
    return hydra


def sweep_grid(sweep_dir: Path) -> list[list[str]] | None:
    """Each job's overrides, in job-number order, as Hydra's basic sweeper expands multirun.yaml
    (the sweeper's params, then the command line's task overrides; a later key wins; the
    cartesian product of the comma lists). None when unknown: no readable multirun.yaml,
    another sweeper, or a sweep this cannot expand."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        hydra = _multirun_hydra(sweep_dir)
        sweeper = hydra.get("sweeper") or {}
        if not str(sweeper.get("_target_") or "BasicSweeper").endswith("BasicSweeper"):
            return None  # optuna & co. choose their jobs as they go: no grid to count
        params = sweeper.get("params") or {}
        task = (hydra.get("overrides") or {}).get("task") or []
        lines = [*(f"{k}={v}" for k, v in params.items()), *map(str, task)]
        overrides = OverridesParser.create().parse_overrides(lines)
        [grid] = BasicSweeper.split_arguments(overrides, None)
    except (OSError, yaml.YAMLError, LookupError, TypeError, AttributeError, ValueError):
        return None
    except HydraException:
        return None  # e.g. a glob() sweep, which needs the config to expand
    return grid


def sweep_overrides(sweep_dir: Path) -> list[str]:
    """What Hydra's multirun.yaml says the sweep was launched with: the sweeper's params as
    `key=values`, then the command line's overrides; empty without a readable multirun.yaml."""
    try:
        hydra = _multirun_hydra(sweep_dir)
        params = (hydra.get("sweeper") or {}).get("params") or {}
        task = (hydra.get("overrides") or {}).get("task") or []
        return [*(f"{k}={v}" for k, v in params.items()), *map(str, task)]
    except (OSError, yaml.YAMLError, LookupError, TypeError, AttributeError):
        return []  # absent or not Hydra's: the report goes without it
