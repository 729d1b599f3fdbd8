"""The jobs of a Hydra multirun folder, read from their metrics.json: completed, failed, missing."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from siamese.run.record import METRICS_FILE

COMPLETED, FAILED, MISSING = "completed", "failed", "missing"
HYDRA_OVERRIDES = Path(".hydra") / "overrides.yaml"
SWEEPS_ROOT = Path("outputs") / "sweeps"
MESSAGE_CHARS = 300  # a traceback-sized message would swamp the report's list


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

    @property
    def number(self) -> int:
        return int(self.folder.name)


def override_key(override: str) -> str:
    """`+a.b=1` -> `a.b`: the key an override sets, whatever its +, ++ or ~ prefix."""
    return override.split("=", 1)[0].lstrip("+~")


def override_value(override: str) -> str:
    return override.split("=", 1)[1] if "=" in override else ""


def split_seed(overrides: list[str] | None) -> tuple[tuple[str, ...] | None, str | None]:
    if overrides is None:
        return None, None
    seeds = [override_value(o) for o in overrides if override_key(o) == "seed"]
    cell = sorted((o for o in overrides if override_key(o) != "seed"), key=override_key)
    return tuple(cell), (seeds[-1] if seeds else None)


def one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def _hydra_overrides(folder: Path) -> list[str] | None:
    path = folder / HYDRA_OVERRIDES
    try:
        overrides = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return [str(o) for o in overrides] if isinstance(overrides, list) else None


def read_job(folder: Path) -> Job:
    path = folder / METRICS_FILE
    if not path.exists():
        return Job(
            folder, MISSING, *split_seed(_hydra_overrides(folder)), problem="no metrics.json"
        )
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        cell, seed = split_seed(_hydra_overrides(folder))
        return Job(folder, MISSING, cell, seed, problem=one_line(f"unreadable metrics.json: {err}"))
    overrides = record.get("overrides")
    cell, seed = split_seed(overrides if isinstance(overrides, list) else _hydra_overrides(folder))
    if record.get("seed") is not None:
        seed = str(record["seed"])  # the resolved seed, also when the config set it, not the sweep
    status = record.get("status")
    if status == COMPLETED:
        metrics = {
            k: float(v)
            for k, v in (record.get("metrics") or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        return Job(folder, COMPLETED, cell, seed, metrics)
    if status == FAILED:
        error = record.get("error") or {}
        kind, message = error.get("type") or "error", one_line(error.get("message") or "")
        return Job(folder, FAILED, cell, seed, problem=f"{kind}: {message}" if message else kind)
    # "running" that nobody runs any more: the job was killed before it could record an ending
    return Job(folder, MISSING, cell, seed, problem=f"status {status!r} (killed mid-run?)")


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
