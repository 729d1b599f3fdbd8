"""`hydra/sweeper=tune` (src/siamese/conf/hydra/sweeper/tune.yaml): a Hydra sweeper on Optuna's
ask/tell, its study in a journal file in the sweep folder (siamese.compare.study), jobs launched by
the configured launcher (basic, Ray, SLURM):

- a trial whose job raised, or returned no finite number, is told to Optuna as the worst score
  instead of being raised: it counts as a trial, steers the sampler away, and the search goes on;
- with data.folds=k set, each trial is k jobs (data.fold=0..k-1) and its objective their mean val
  metric (class-disjoint k-fold, as in Musgrave et al. 2020);
- trial t's jobs are numbered t·k .. t·k+k−1 (k = 1 without folds), so a resumed search and
  several workers never share a job folder;
- every trial's objective, as told, is appended to trials.jsonl in the sweep folder, and the search
  itself (direction, budget, space) is written to search.yaml there before the first trial;
- resume=auto in the sweep folder continues the study: told trials are kept, trials asked but never
  told are re-run in their own job folders, the rest of the budget is asked.

Hydra instantiates plugins only from the hydra_plugins namespace, hence this package; the logic is in
siamese.compare. Imports stay light: Hydra imports every plugin module on each start.
"""

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper

RESUME = "resume"  # the config key of resume=auto: the jobs get it, the search's record does not


def trial_groups(runs: list[tuple[int, list[str]]]) -> list[list[tuple[int, list[str]]]]:
    """Runs of consecutive trial numbers: each is one launch, its jobs numbered from its first."""
    groups: list[list[tuple[int, list[str]]]] = []
    for run in sorted(runs, key=lambda r: r[0]):
        if groups and groups[-1][-1][0] == run[0] - 1:
            groups[-1].append(run)
        else:
            groups.append([run])
    return groups


def trial_outcome(returns: Sequence[JobReturn], folds: int | None) -> tuple[list, list[str]]:
    """Each of a trial's jobs' value (None where it failed) and what went wrong."""
    from siamese.compare.trials import objective

    values, failed = [], []
    for fold, ret in enumerate(returns):
        try:  # a failed job's return_value raises what the job raised
            value, error = objective(ret.return_value)
        except Exception as err:
            value, error = None, f"{type(err).__name__}: {err}"
        values.append(value)
        if error:
            failed.append(f"fold {fold}: {error}" if folds else error)
    return values, failed


def run_trials(
    launcher: Any,
    runs: list[tuple[int, list[str]]],
    folds: int | None,
    sweep_dir: Path,
    worst: float,
    extra: Sequence[str] = (),
) -> list[float]:
    """Launches each trial's jobs (its overrides plus `extra`; k fold jobs with folds), appends
    each trial's record to trials.jsonl and returns the score to tell for each, in the order of
    `runs`: the objective, or `worst` for a failed trial."""
    from siamese.compare.trials import append_records, fold_overrides, trial_record

    k = folds or 1
    records = {}
    for group in trial_groups(runs):
        jobs = [fold_overrides([*o, *extra], f, folds) for _, o in group for f in range(k)]
        returns = launcher.launch(jobs, initial_job_idx=group[0][0] * k)
        for i, (number, overrides) in enumerate(group):
            values, failed = trial_outcome(returns[i * k : (i + 1) * k], folds)
            mean = None if failed else sum(values) / k
            records[number] = trial_record(
                number, number * k, overrides, mean, "; ".join(failed), values if folds else None
            )
    ordered = [records[number] for number, _ in runs]
    append_records(sweep_dir, ordered)  # before the tell: a told trial always has its record
    return [worst if r["objective"] is None else r["objective"] for r in ordered]


class TuneSweeper(Sweeper):
    def __init__(
        self,
        direction: str,
        n_trials: int,
        n_jobs: int,
        sampler: functools.partial,
        params: Any = None,
        worker: int = 0,
    ) -> None:
        from siamese.compare.trials import worst
        from siamese.core.errors import ArgumentError, at_least

        self.direction, self.worst = str(direction), worst(str(direction))
        try:
            self.n_trials = at_least("n_trials", n_trials, 1)
            self.n_jobs = at_least("n_jobs", n_jobs, 1)
            self.worker = at_least("worker", worker, 0)
            if not isinstance(sampler, functools.partial):  # made anew for each trial
                raise ArgumentError(
                    "sampler",
                    "must be an Optuna sampler with _partial_: true (optuna_tpe, optuna_random)",
                )
        except ArgumentError as err:
            raise err.at("hydra.sweeper") from None
        self.sampler, self.params = sampler, dict(params or {})

    def setup(self, *, hydra_context, task_function, config) -> None:
        from hydra.core.plugins import Plugins

        from siamese.compare.trials import check_direction, fold_count
        from siamese.config.resolvers import AUTO

        check_direction(self.direction, config.get("evaluation", {}).get("mode"))
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.folds = fold_count(config)
        self.resume = config.get(RESUME) == AUTO

    def sweep(self, arguments: list[str]) -> None:
        from omegaconf import OmegaConf

        from siamese.compare.space import search_space
        from siamese.compare.study import Search, SeedPerTrial, open_study, write_results
        from siamese.compare.trials import write_search
        from siamese.config.overrides import override_key

        sweep_dir = Path(self.config.hydra.sweep.dir)
        space = search_space(self.params, arguments, dropped=(RESUME,))
        seed = self.sampler.keywords.get("seed")
        search = {"params": space.params, "overrides": space.fixed}
        sampler = SeedPerTrial(self.sampler, seed)
        study = open_study(sweep_dir, self.direction, sampler, search, self.resume)
        write_search(  # once the folder's study is known to be this search
            sweep_dir,
            {
                "direction": self.direction,
                "n_trials": self.n_trials,
                "n_jobs": self.n_jobs,
                "sampler": self.sampler.func.__name__,
                "seed": seed,
                "params": space.params,
                "arguments": [a for a in arguments if override_key(a) != RESUME],
                "monitor": OmegaConf.select(self.config, "evaluation.monitor"),
                "folds": self.folds,  # k jobs per trial, the objective their mean; null: none
            },
        )
        extra = [f"{RESUME}=auto"] if self.resume else []
        Search(study, space, self.n_trials, self.n_jobs, self.worker).run(
            lambda runs: run_trials(self.launcher, runs, self.folds, sweep_dir, self.worst, extra)
        )
        write_results(sweep_dir, study)
