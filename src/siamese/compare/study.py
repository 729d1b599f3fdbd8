"""The tuning study: an Optuna study in a journal file in the sweep folder, asked and told in
batches, so that a killed search continues where it stopped and several workers share it.

- The study is `<sweep dir>/study.journal` (Optuna's JournalStorage on a JournalFileBackend: every
  ask and tell appended under a file lock, on any file system with working links, NFS included). A
  search started in a folder that holds one is refused without resume=auto; with it the study is
  loaded, and it must be the same search (space and shared overrides, kept in the study).
- n_trials is the study's budget: a search asks until the study holds n_trials trials, so a resumed
  search, or a second worker, asks only what is left; told trials are never asked again.
- A trial asked but never told (the search was killed while its jobs ran) is re-run, not failed:
  its values are in the study, so the resumed search launches it again with the same overrides into
  the same job folders, where resume=auto finishes each job (a completed one returns its stored
  metric, an interrupted one resumes from its checkpoint). Failing it instead would lose a trial of
  the budget and tell the sampler a score the trial never had; re-run, the study ends as the
  uninterrupted search does. A batch interrupted half asked is completed (the missing trials are
  asked before anything is told), so every batch sees the history it would have seen. Only a trial
  killed in the milliseconds of its own ask, before all its values were drawn, is told failed: it
  has no values to run.
- Each trial's proposal comes from the configured sampler made anew for that trial, seeded from
  (the sampler's seed, the trial number): it depends on the seed, the trial number and the trials
  told before it, not on how many proposals this process made before, so a resumed search proposes
  what the uninterrupted one did.
- Several workers (processes started with the same command and resume=auto, e.g. a SLURM array)
  share one study: each sets hydra.sweeper.worker to its own number; a trial belongs to the worker
  that asked it (user attribute `worker`), and a resumed worker re-runs only its own.
"""

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import yaml
from optuna.samplers import BaseSampler
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from siamese.compare.space import Space
from siamese.compare.trials import TRIALS_FILE
from siamese.core.atomic import atomic_write_text
from siamese.run.record import METRICS_FILE

JOURNAL_FILE = "study.journal"
RESULTS_FILE = "optimization_results.yaml"
STUDY_NAME = "tune"
log = logging.getLogger(__name__)


class StudyError(Exception):
    """The sweep folder's study cannot be used as asked; the message says what to do."""


def trial_seed(seed: int | None, number: int) -> int | None:
    """A trial's own seed: a function of the search's seed and the trial number only."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class SeedPerTrial(BaseSampler):
    """The configured sampler (`make(seed=...)`, e.g. a partial of optuna.samplers.TPESampler)
    made anew for each trial with trial_seed(seed, trial number)."""

    def __init__(self, make: Callable[..., BaseSampler], seed: int | None):
        self.make, self.seed = make, seed
        self.samplers: dict[int, BaseSampler] = {}

    def of(self, trial: FrozenTrial) -> BaseSampler:
        if trial.number not in self.samplers:
            self.samplers[trial.number] = self.make(seed=trial_seed(self.seed, trial.number))
        return self.samplers[trial.number]

    def infer_relative_search_space(self, study, trial):
        return self.of(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self.of(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.of(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self.of(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self.of(trial).after_trial(study, trial, state, values)
        del self.samplers[trial.number]


def open_study(
    sweep_dir: Path, direction: str, sampler: BaseSampler, search: dict, resume: bool
) -> optuna.Study:
    """The sweep folder's study: new, or (resume) the one there, which must hold `search`."""
    path = Path(sweep_dir) / JOURNAL_FILE
    if path.exists() and not resume:
        raise StudyError(
            f"{path} already holds a search: a folder is never reused; to continue that search "
            "add resume=auto (told trials are kept, the rest are run)"
        )
    used = [*Path(sweep_dir).glob(f"*/{METRICS_FILE}"), *Path(sweep_dir).glob(TRIALS_FILE)]
    if used and not path.exists():  # its jobs would be taken for the new study's trials
        raise StudyError(
            f"{sweep_dir} holds jobs of a search without {JOURNAL_FILE} (another sweeper's, or "
            "one from before the study was kept): it cannot be continued; start the search in a "
            "new folder"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        storage=JournalStorage(JournalFileBackend(str(path))),
        sampler=sampler,
        study_name=STUDY_NAME,
        direction=direction,
        load_if_exists=True,
    )
    stored = study.user_attrs.get("search")
    if stored is None:
        study.set_user_attr("search", search)
    elif stored != search:
        changed = sorted(k for k in {*stored, *search} if stored.get(k) != search.get(k))
        raise StudyError(
            f"resume=auto continues the search in {path} as it was started; this command changes "
            f"its {', '.join(changed)} (was {[stored.get(k) for k in changed]}, now "
            f"{[search.get(k) for k in changed]}): run it without those changes, or as a new "
            "search in another folder"
        )
    return study


WORKER = "worker"  # a trial's user attribute: the worker that asked it


class Search:
    """Asks and tells one worker's share of a study in batches of n_jobs trials."""

    def __init__(self, study: optuna.Study, space: Space, n_trials: int, n_jobs: int, worker: int):
        self.study, self.space = study, space
        self.n_trials, self.n_jobs, self.worker = n_trials, n_jobs, worker
        if worker:  # before its first ask: worker 0 no longer takes unmarked trials for its own
            study.set_user_attr(f"{WORKER} {worker}", True)
        self.orphans = self.take_orphans()

    def take_orphans(self) -> list[FrozenTrial]:
        """This worker's trials that a killed search asked and never told; the first batches re-run
        them. A trial is marked with its worker right after its ask; one killed before that is
        worker 0's while no other worker has joined the study (read after the trials: a worker
        joins before it asks). One killed before all its values were drawn cannot be re-run: it is
        told failed."""
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        alone = not any(k.startswith(f"{WORKER} ") for k in self.study.user_attrs)
        unmarked = 0 if alone else None
        mine = [t for t in running if t.user_attrs.get(WORKER, unmarked) == self.worker]
        for trial in mine:
            if trial.params.keys() != self.space.distributions.keys():
                self.study.tell(trial.number, state=TrialState.FAIL)
        return [t for t in mine if t.params.keys() == self.space.distributions.keys()]

    def next_batch(self) -> list[FrozenTrial | optuna.Trial]:
        """Up to n_jobs trials to run: this worker's orphans first, then new ones while the study
        holds fewer than n_trials; empty when the budget is spent."""
        batch: list[FrozenTrial | optuna.Trial] = self.orphans[: self.n_jobs]
        self.orphans = self.orphans[self.n_jobs :]
        held = len(self.study.get_trials(deepcopy=False))
        for _ in range(min(self.n_jobs - len(batch), self.n_trials - held)):
            trial = self.study.ask(self.space.distributions)
            if trial.number >= self.n_trials:  # another worker asked the last one meanwhile
                self.study.tell(trial, state=TrialState.FAIL)
                break
            trial.set_user_attr(WORKER, self.worker)
            batch.append(trial)
        return batch

    def run(self, launch: Callable[[list[tuple[int, list[str]]]], list[float]]) -> None:
        """Runs every batch: `launch([(trial number, overrides), ...])` returns each trial's score,
        which is told to the study."""
        while batch := self.next_batch():
            runs = [(t.number, self.space.overrides(t.params)) for t in batch]
            for (number, _), value in zip(runs, launch(runs), strict=True):
                self.study.tell(number, value)


def write_results(sweep_dir: Path, study: optuna.Study) -> Path:
    """optimization_results.yaml: the best trial's values and score (as Hydra's Optuna sweeper
    wrote it)."""
    best = study.best_trial
    log.info("best trial %d: %s, %s", best.number, best.value, best.params)
    results = {"name": "optuna", "best_params": best.params, "best_value": best.value}
    path = Path(sweep_dir) / RESULTS_FILE
    atomic_write_text(path, yaml.safe_dump(results, sort_keys=False))
    return path
