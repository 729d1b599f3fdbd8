"""A compare folder read back: each method's tuning trials and its confirmation jobs.

outputs/compare/<date>_<time>_<name>/
    compare.json              what ran: methods, budgets, commands, phase wall times, best trials
    tune/<method>/            the method's search, a Hydra multirun folder with trials.jsonl
    confirm/<method>/         its best configuration re-run over seeds, a Hydra multirun folder
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hydra.utils import get_class

from siamese.compare.trials import SEARCH_FILE, read_records
from siamese.report.collect import Job, SweepError, collect
from siamese.run.checkpoint import MOVED
from siamese.run.record import COMPLETED

COMPARE_FILE = "compare.json"
TUNE, CONFIRM = "tune", "confirm"
CONFIG_FILE = "config.yaml"  # the resolved config each job writes into its folder


def is_compare_folder(path: Path) -> bool:
    path = Path(path)
    return (path / TUNE).is_dir() and (path / CONFIRM).is_dir()


def read_config(folder: Path) -> dict | None:
    """A job's resolved config.yaml as plain data; None when the job failed before writing it."""
    try:
        data = yaml.safe_load((Path(folder) / CONFIG_FILE).read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def read_meta(folder: Path) -> dict:
    try:
        return json.loads((Path(folder) / COMPARE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def sweeper_settings(sweep_dir: Path) -> dict:
    """The search as the tune sweeper wrote it (search.yaml: direction, n_trials, params), else
    hydra.sweeper of a multirun.yaml; {} when neither is readable."""
    try:
        search = yaml.safe_load((Path(sweep_dir) / SEARCH_FILE).read_text())
        if isinstance(search, dict):
            return search
    except (OSError, yaml.YAMLError):
        pass
    try:
        hydra = yaml.safe_load((Path(sweep_dir) / "multirun.yaml").read_text())["hydra"]
        return dict(hydra.get("sweeper") or {})
    except (OSError, yaml.YAMLError, LookupError, TypeError, AttributeError):
        return {}


def images_per_step(config: dict) -> int | None:
    """Images one training step sees: data.images_per_step when set, else batch × tuple size."""
    data = config.get("data") or {}
    if data.get("images_per_step"):
        return int(data["images_per_step"])
    size = tuple_size(config)
    if size is None or data.get("batch_size") is None:
        return None
    return int(data["batch_size"]) * size


def tuple_size(config: dict) -> int | None:
    """Images per tuple of the config's sampler class (PK batches count images already); None
    when its sampler._target_ is absent or names no sampler this code has."""
    target = (config.get("sampler") or {}).get("_target_")
    if not isinstance(target, str):
        return None
    try:  # a run of an earlier layout stored the class where it was then
        sampler = get_class(MOVED.get(target, target))
    except (ImportError, ValueError):
        return None
    return getattr(sampler, "tuple_size", None)


def planned_steps(config: dict) -> int | None:
    try:
        return int(config["data"]["steps_per_epoch"]) * int(config["trainer"]["max_epochs"])
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class Trial:
    number: int
    status: str  # completed | failed, as the sweeper told Optuna
    objective: float | None  # the job's monitored val metric; None when failed
    overrides: list[str]
    error: str | None = None
    job: int | None = None  # its (first fold's) job folder; None in records that lack it
    folds: list[float | None] | None = None  # each fold's val metric when it ran over folds

    @property
    def folder(self) -> str:
        return str(self.number if self.job is None else self.job)


@dataclass
class Method:
    name: str
    trials: list[Trial]
    tune_jobs: list[Job]  # every tuning job (completed, failed, missing), in job order
    confirm: list[Job]  # every confirmation job, in job order
    direction: str = "maximize"
    space: dict = field(default_factory=dict)  # hydra.sweeper.params of its search
    folds: int | None = None  # data.folds of its search: k jobs per trial
    best_config: dict | None = None  # the resolved config of a confirmation job (else best trial)
    tune_configs: dict[int, dict] = field(default_factory=dict)  # job number -> resolved config

    @property
    def label(self) -> str:
        return self.name.upper()

    @property
    def completed_confirm(self) -> list[Job]:
        return [j for j in self.confirm if j.status == COMPLETED]

    def best_trial(self) -> Trial | None:
        done = [t for t in self.trials if t.objective is not None]
        if not done:
            return None
        sign = 1 if self.direction == "maximize" else -1
        return max(done, key=lambda t: (sign * t.objective, -t.number))  # ties: the earliest

    def best_so_far(self) -> list[float]:
        """The tuning curve: the best objective after each trial (nan before the first success)."""
        better = max if self.direction == "maximize" else min
        curve, best = [], math.nan
        for t in sorted(self.trials, key=lambda t: t.number):
            if t.objective is not None:
                best = t.objective if math.isnan(best) else better(best, t.objective)
            curve.append(best)
        return curve


def _all_jobs(sweep_dir: Path) -> list[Job]:
    if not Path(sweep_dir).is_dir():
        return []
    try:
        completed, failed, missing = collect(sweep_dir)
    except SweepError:
        return []  # no job folder yet
    return sorted([*completed, *failed, *missing], key=lambda j: j.number)


def read_method(folder: Path, name: str) -> Method:
    tune_dir, confirm_dir = Path(folder) / TUNE / name, Path(folder) / CONFIRM / name
    trials = [
        Trial(
            r["trial"],
            r["status"],
            r.get("objective"),
            r.get("overrides", []),
            r.get("error"),
            r.get("job"),
            r.get("folds"),
        )
        for r in read_records(tune_dir)
    ]
    settings = sweeper_settings(tune_dir)
    direction = str(settings.get("direction") or "maximize")
    method = Method(
        name,
        trials,
        _all_jobs(tune_dir),
        _all_jobs(confirm_dir),
        direction,
        dict(settings.get("params") or {}),
        settings.get("folds"),
    )
    method.tune_configs = {
        j.number: c for j in method.tune_jobs if (c := read_config(j.folder)) is not None
    }
    configs = [c for j in method.completed_confirm if (c := read_config(j.folder)) is not None]
    best = method.best_trial()
    method.best_config = (
        configs[0] if configs else (best and method.tune_configs.get(int(best.folder)))
    )
    return method


def method_names(folder: Path) -> list[str]:
    """The methods in the order compare.json gives (the first minus the second is reported),
    else the tune/ subfolders by name."""
    names = read_meta(folder).get("methods")
    if names:
        return list(names)
    return sorted(p.name for p in (Path(folder) / TUNE).iterdir() if p.is_dir())


def read_compare(folder: Path) -> tuple[dict, list[Method]]:
    folder = Path(folder)
    if not is_compare_folder(folder):
        raise SweepError(f"{folder} is no compare folder: it needs {TUNE}/ and {CONFIRM}/ inside")
    names = method_names(folder)
    if len(names) < 2:
        raise SweepError(f"{folder}/{TUNE}/ holds {len(names)} method(s): a comparison needs 2")
    return read_meta(folder), [read_method(folder, n) for n in names]
