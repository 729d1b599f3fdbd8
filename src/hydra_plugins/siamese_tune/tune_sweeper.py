"""`hydra/sweeper=tune` (src/siamese/conf/hydra/sweeper/tune.yaml): Hydra's Optuna sweeper (hydra-optuna-sweeper
1.3.0) with three changes, all in the launcher it drives, so any launcher (basic, Ray, SLURM) works:

- a trial whose job raised, or returned no finite number, is told to Optuna as the worst score
  instead of being raised: the plain sweeper marks it FAIL (TPE then ignores it) and, with its default
  max_failure_rate 0, stops the whole search after that batch;
- with data.folds=k set, each trial is k jobs (data.fold=0..k-1) and its objective their mean val
  metric (class-disjoint k-fold, as in Musgrave et al. 2020);
- every trial's objective, as told, is appended to trials.jsonl in the sweep folder, and the search
  itself (direction, budget, space) is written to search.yaml there before the first trial.

Hydra instantiates plugins only from the hydra_plugins namespace, hence this package; the logic is in
siamese.compare.trials. Imports stay light: Hydra imports every plugin module on each start.
"""

from typing import Any

from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper


class _WorstOnFailure:
    """Wraps the sweeper's launcher: each failed job comes back as a completed one that returned the
    worst score, and each batch is recorded. With `folds=k` (data.folds of the config) each trial
    runs as k jobs, data.fold=0..k-1, and returns their mean; one failed fold fails the trial."""

    def __init__(self, launcher: Any, direction: str, sweep_dir: str, folds: int | None = None):
        from siamese.compare.trials import worst

        self.launcher, self.worst, self.sweep_dir = launcher, worst(direction), sweep_dir
        self.folds = folds
        self.next_job = 0  # the launcher's job numbers: k per trial with folds

    def launch(self, job_overrides, initial_job_idx: int):
        from siamese.compare.trials import append_records, fold_overrides, objective, trial_record

        k = self.folds or 1
        jobs = [fold_overrides(o, f, self.folds) for o in job_overrides for f in range(k)]
        first = self.next_job if self.folds else initial_job_idx
        returns = self.launcher.launch(jobs, initial_job_idx=first)
        self.next_job = first + len(jobs)
        out, records = [], []
        for i, overrides in enumerate(job_overrides):
            values, errors = [], []
            for ret in returns[i * k : (i + 1) * k]:
                if ret.status == JobStatus.COMPLETED:
                    value, error = objective(ret._return_value)
                else:
                    err = ret._return_value
                    value, error = None, f"{type(err).__name__}: {err}"
                values.append(value)
                errors.append(error)
            failed = [f"fold {f}: {e}" if self.folds else e for f, e in enumerate(errors) if e]
            mean = None if failed else sum(values) / k
            ret = returns[i * k]  # the trial's return, as the Optuna sweeper reads one per trial
            ret.status, ret._return_value = (
                JobStatus.COMPLETED,
                self.worst if mean is None else mean,
            )
            out.append(ret)
            trial = initial_job_idx + i  # the Optuna sweeper counts one job per trial
            records.append(
                trial_record(
                    trial,
                    first + i * k,
                    list(overrides),
                    mean,
                    "; ".join(failed),
                    folds=values if self.folds else None,
                )
            )
        append_records(self.sweep_dir, records)
        return out


class TuneSweeper(Sweeper):
    def __init__(self, **optuna_args: Any) -> None:
        from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl

        direction = optuna_args["direction"]
        self.direction = str(getattr(direction, "name", direction))  # an Enum or its name
        self.sweeper = OptunaSweeperImpl(**optuna_args)

    def setup(self, *, hydra_context, task_function, config) -> None:
        from siamese.compare.trials import check_direction, fold_count

        check_direction(self.direction, config.get("evaluation", {}).get("mode"))
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.folds = fold_count(config)
        self.sweeper.launcher = _WorstOnFailure(
            self.sweeper.launcher, self.direction, str(config.hydra.sweep.dir), self.folds
        )

    def sweep(self, arguments: list[str]) -> None:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from omegaconf import OmegaConf

        from siamese.compare.trials import write_search

        impl = self.sweeper
        space = {str(k): str(v) for k, v in (impl.params or {}).items()}
        for override in OverridesParser.create().parse_overrides(arguments):
            key = override.get_key_element()
            if override.is_sweep_override():  # a command-line range joins the space
                space[key] = override.get_value_string()
            else:  # a fixed value takes the key out of it
                space.pop(key, None)
        sampler = getattr(impl.sampler, "func", impl.sampler)  # GridSampler comes as a partial
        write_search(
            impl.config.hydra.sweep.dir,
            {
                "direction": self.direction,
                "n_trials": impl.n_trials,
                "n_jobs": impl.n_jobs,
                "sampler": type(sampler).__name__
                if not isinstance(sampler, type)
                else sampler.__name__,
                "params": space,
                "arguments": list(arguments),
                "monitor": OmegaConf.select(impl.config, "evaluation.monitor"),
                "folds": self.folds,  # k jobs per trial, the objective their mean; null: none
            },
        )
        return impl.sweep(arguments)
