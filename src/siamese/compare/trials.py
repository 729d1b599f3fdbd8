"""What the tuning sweeper tells Optuna per trial, and its record, trials.jsonl, in the sweep folder.

A trial whose job raised, or returned no finite number, is told as the worst possible score (−inf
when maximizing, +inf when minimizing): it counts as a trial and steers the sampler away, and the
search goes on. Kept free of Hydra's and Optuna's imports so that it is tested on its own.
"""

import json
import math
from pathlib import Path

from siamese.config.overrides import replace_value
from siamese.core.atomic import atomic_write_text
from siamese.run.record import COMPLETED, FAILED

TRIALS_FILE = "trials.jsonl"
SEARCH_FILE = "search.yaml"
DIRECTIONS = {"maximize": "max", "minimize": "min"}


def worst(direction: str) -> float:
    if direction not in DIRECTIONS:
        raise ValueError(f"hydra.sweeper.direction must be maximize or minimize, got {direction!r}")
    return -math.inf if direction == "maximize" else math.inf


def objective(returned: object) -> tuple[float | None, str]:
    """(the finite float a job returned, "") or (None, why it is no score)."""
    try:
        value = float(returned)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, f"the job returned {returned!r}, not a number"
    if not math.isfinite(value):
        return None, f"the job returned {value}"
    return value, ""


def trial_record(
    trial: int,
    job: int,
    overrides: list[str],
    value: float | None,
    error: str,
    folds: list[float | None] | None = None,
) -> dict:
    """One line of trials.jsonl: `objective` is what the job returned (its monitored val metric),
    or with folds the mean of the folds' (`folds`: each fold's, null where it failed; `job`: the
    first fold's job); null for a failed trial, which Optuna was told as the worst score."""
    record = {
        "trial": trial,
        "job": job,
        "overrides": list(overrides),
        "status": COMPLETED if value is not None else FAILED,
        "objective": value,
        "error": error or None,
    }
    if folds is not None:
        record["folds"] = list(folds)
    return record


def fold_count(config) -> int | None:
    """data.folds of a composed config (None when off or absent)."""
    from omegaconf import OmegaConf

    folds = OmegaConf.select(config, "data.folds", default=None)
    return None if folds is None else int(folds)


def fold_overrides(overrides, fold: int, folds: int | None) -> list[str]:
    """A trial's overrides for one of its fold jobs: data.fold=<fold> in place of any given."""
    if folds is None:
        return list(overrides)
    return replace_value(overrides, "data.fold", fold)


def append_records(sweep_dir: Path, records: list[dict]) -> Path:
    path = Path(sweep_dir) / TRIALS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # one batch at a time, in one write: a killed search keeps what it ran, and the lines of
    # several workers do not interleave
    with path.open("a") as f:
        f.write("".join(json.dumps(record) + "\n" for record in records))
    return path


def write_search(sweep_dir: Path, search: dict) -> Path:
    """search.yaml: the search as run (direction, n_trials, sampler, params: the space)."""
    import yaml

    path = Path(sweep_dir) / SEARCH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(search, sort_keys=False))
    return path


def read_records(sweep_dir: Path) -> list[dict]:
    """Each trial's record, by trial number. A trial re-run after its search was killed between
    writing its record and telling it has two, alike: the later one is kept."""
    path = Path(sweep_dir) / TRIALS_FILE
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted({r["trial"]: r for r in lines}.values(), key=lambda r: r["trial"])


def check_direction(direction: str, mode: str | None) -> None:
    """The sweeper's direction must agree with the checkpoint's evaluation.mode: both pick 'best'."""
    worst(direction)
    if mode is not None and DIRECTIONS[direction] != mode:
        raise ValueError(
            f"hydra.sweeper.direction={direction} but evaluation.mode={mode}: the search and the "
            "checkpoint would disagree on which score is best; set hydra.sweeper.direction="
            f"{'maximize' if mode == 'max' else 'minimize'}"
        )
