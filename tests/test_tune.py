"""The tune sweeper on Optuna's ask/tell: the search space in Hydra's syntax, the study in a journal
file in the sweep folder, a killed search resumed to the uninterrupted one's trials, several
workers on one study; slow: a real 10-trial search killed with SIGKILL and resumed with resume=auto."""

import functools
import math
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
import yaml
from hydra.core.utils import JobReturn, JobStatus
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import TPESampler
from optuna.trial import TrialState

from hydra_plugins.siamese_tune.tune_sweeper import TuneSweeper, run_trials
from siamese.compare.space import search_space
from siamese.compare.study import (
    JOURNAL_FILE,
    STUDY_NAME,
    Search,
    SeedPerTrial,
    StudyError,
    open_study,
    trial_seed,
)
from siamese.compare.trials import read_records
from tests.helpers import CONF, ROOT, TINY

optuna.logging.set_verbosity(optuna.logging.WARNING)

# --- the space: Hydra's override syntax as Optuna distributions -----------------------------------


def test_the_tune_files_spaces_become_optuna_distributions():
    params = yaml.safe_load((CONF / "tune" / "sprn.yaml").read_text())["hydra"]["sweeper"]["params"]
    space = search_space(params, ["+tune=sprn", "debug=tiny"])
    d = space.distributions
    assert d["optimizer.lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert d["loss.margin"] == FloatDistribution(0.01, 2.0, log=True)
    assert d["optimizer.weight_decay"] == CategoricalDistribution([0, 1e-5, 1e-4, 1e-3])
    assert d["loss.squared_distance"] == CategoricalDistribution([True, False])
    assert space.params["optimizer.lr"] == "tag(log, interval(1e-4, 1e-2))"  # as written
    assert space.fixed == ["+tune=sprn", "debug=tiny"]


def test_the_command_line_adds_to_the_space_and_fixes_keys_in_it():
    params = {"optimizer.lr": "interval(0.001, 0.1)", "loss.margin": "interval(0.1, 1)"}
    arguments = ["loss.margin=0.5", "model.depth=range(2,8,2)", "a=1,2", "resume=auto", "seed=3"]
    space = search_space(params, arguments, dropped=("resume",))
    assert list(space.distributions) == ["optimizer.lr", "model.depth", "a"]
    assert space.distributions["optimizer.lr"] == FloatDistribution(0.001, 0.1)
    # Hydra's range stops before its end: so does the distribution (2, 4, 6)
    assert space.distributions["model.depth"] == IntDistribution(2, 6, step=2)
    assert space.distributions["a"] == CategoricalDistribution([1, 2])
    assert space.fixed == ["loss.margin=0.5", "seed=3"]  # resume= is the job's, not the search's
    values = {"optimizer.lr": 0.01, "model.depth": 4, "a": 2}
    assert space.overrides(values) == [
        "optimizer.lr=0.01",
        "model.depth=4",
        "a=2",
        "loss.margin=0.5",
        "seed=3",
    ]
    with pytest.raises(ValueError, match="x=glob"):
        search_space({}, ["x=glob(*)"])


# --- the search: batches, resume, workers (a fake objective, no training) -------------------------

PARAMS = {
    "optimizer.lr": "tag(log, interval(1e-4, 1e-1))",
    "loss.margin": "interval(0.05, 2.0)",
    "data.images_per_step": "choice(96, 192, 384)",
}
SPACE = search_space(PARAMS, ["debug=tiny"])
SEARCH = {"params": SPACE.params, "overrides": SPACE.fixed}


def score(overrides: list[str]) -> float:
    """A smooth function of the overrides, best at lr 1e-2, margin 0.5, 192 images a step."""
    v = dict(o.split("=", 1) for o in overrides)
    lr, margin, images = (
        float(v["optimizer.lr"]),
        float(v["loss.margin"]),
        int(v["data.images_per_step"]),
    )
    return -((math.log10(lr) + 2) ** 2) - (margin - 0.5) ** 2 - (images != 192)


class Killed(BaseException):
    """What a kill does to the search: it stops, whatever it was doing."""


def study_in(folder: Path, resume: bool = False) -> optuna.Study:
    """The folder's study as a new process opens it: its own journal reader, a new sampler."""
    sampler = SeedPerTrial(functools.partial(TPESampler, n_startup_trials=3), seed=0)
    return open_study(folder, "maximize", sampler, SEARCH, resume)


def search(folder, n_trials=10, n_jobs=1, worker=0, resume=False, kill_at=None, launched=None):
    """Runs a search; `kill_at`: killed while the batch holding that trial runs."""

    def launch(runs):
        if launched is not None:
            launched.extend(number for number, _ in runs)
        if kill_at is not None and any(number >= kill_at for number, _ in runs):
            raise Killed
        return [score(overrides) for _, overrides in runs]

    study = study_in(folder, resume)
    try:
        Search(study, SPACE, n_trials, n_jobs, worker).run(launch)
    except Killed:
        pass
    return study


def summary(study: optuna.Study) -> list[tuple]:
    return [(t.number, t.state, t.params, t.value) for t in study.get_trials()]


@pytest.mark.parametrize("n_jobs", [1, 3])
def test_a_killed_search_resumed_ends_as_the_uninterrupted_one(tmp_path, n_jobs):
    whole = summary(search(tmp_path / "whole", n_jobs=n_jobs))
    assert [s[1] for s in whole] == [TrialState.COMPLETE] * 10
    killed = search(tmp_path / "cut", n_jobs=n_jobs, kill_at=5)
    states = [t.state for t in killed.get_trials()]
    assert TrialState.RUNNING in states and states.count(TrialState.COMPLETE) < 10
    orphans = [t.number for t in killed.get_trials() if t.state == TrialState.RUNNING]
    launched = []
    resumed = search(tmp_path / "cut", n_jobs=n_jobs, resume=True, launched=launched)
    # the asked-but-untold trials are re-run first, with the values they were asked with
    assert launched[: len(orphans)] == orphans
    assert summary(resumed) == whole  # same proposals, same scores, 10 trials, one study
    assert resumed.best_params == dict(whole[max(range(10), key=lambda i: whole[i][3])][2])


def test_a_batch_killed_half_asked_is_completed_before_anything_is_told(tmp_path):
    whole = summary(search(tmp_path / "whole", n_jobs=3))
    cut = search(tmp_path / "cut", n_trials=6, n_jobs=3)  # two batches told
    cut.ask(SPACE.distributions).set_user_attr(
        "worker", 0
    )  # killed after the first ask of the third
    launched = []
    resumed = search(tmp_path / "cut", n_jobs=3, resume=True, launched=launched)
    # trials 7 and 8 are asked beside 6, as uninterrupted: before trial 6 is told
    assert launched == [6, 7, 8, 9]
    assert summary(resumed) == whole


def test_the_sampler_seed_decides_the_proposals(tmp_path):
    a, b = search(tmp_path / "a", n_trials=5), search(tmp_path / "b", n_trials=5)
    assert summary(a) == summary(b)
    sampler = SeedPerTrial(functools.partial(TPESampler, n_startup_trials=3), seed=1)
    other = open_study(tmp_path / "c", "maximize", sampler, SEARCH, resume=False)
    Search(other, SPACE, 5, 1, 0).run(lambda runs: [score(o) for _, o in runs])
    assert [t.params for t in other.get_trials()] != [t.params for t in a.get_trials()]
    assert trial_seed(0, 3) == trial_seed(0, 3) != trial_seed(0, 4)
    assert trial_seed(None, 3) is None


def test_a_used_folder_needs_resume_auto_and_the_same_search(tmp_path):
    search(tmp_path, n_trials=2)
    with pytest.raises(StudyError, match=f"{JOURNAL_FILE} already holds a search.*resume=auto"):
        study_in(tmp_path)
    changed = search_space({**PARAMS, "loss.margin": "interval(0.1, 2.0)"}, ["debug=tiny"])
    sampler = SeedPerTrial(functools.partial(TPESampler), seed=0)
    with pytest.raises(StudyError, match="changes its params"):
        open_study(tmp_path, "maximize", sampler, {**SEARCH, "params": changed.params}, True)
    # the same search with a larger budget goes on where it stopped
    more = search(tmp_path, n_trials=4, resume=True)
    assert [t.state for t in more.get_trials()] == [TrialState.COMPLETE] * 4


def test_a_folder_of_jobs_without_a_study_is_not_taken_for_one(tmp_path):
    # a grid sweep's (or the old sweeper's) jobs: resume=auto would read job 0 as trial 0
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "metrics.json").write_text("{}")
    with pytest.raises(StudyError, match="without study.journal.*new folder"):
        study_in(tmp_path, resume=True)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("n_trials", 0, "hydra.sweeper.n_trials must be an integer >= 1, got 0"),
        ("worker", -1, "hydra.sweeper.worker must be an integer >= 0, got -1"),
        ("sampler", TPESampler(), "hydra.sweeper.sampler must be an Optuna sampler with _partial_"),
        ("direction", "up", "hydra.sweeper.direction must be maximize or minimize"),
    ],
)
def test_bad_sweeper_settings_name_their_key(key, value, message):
    settings = {
        "direction": "maximize",
        "n_trials": 2,
        "n_jobs": 1,
        "sampler": functools.partial(TPESampler),
    }
    with pytest.raises(ValueError, match=message):
        TuneSweeper(**{**settings, key: value})


def test_a_worker_re_runs_only_its_own_orphans(tmp_path):
    study = study_in(tmp_path)
    study.ask(SPACE.distributions).set_user_attr("worker", 1)  # worker 1 was killed running it
    ran_by_0 = []
    search(tmp_path, n_trials=3, worker=0, resume=True, launched=ran_by_0)
    assert ran_by_0 == [1, 2]  # trial 0 is worker 1's: it may still be running
    ran_by_1 = []
    done = search(tmp_path, n_trials=3, worker=1, resume=True, launched=ran_by_1)
    assert ran_by_1 == [0]
    assert [t.state for t in done.get_trials()] == [TrialState.COMPLETE] * 3


def test_a_trial_killed_in_its_ask_is_re_run_when_whole_and_failed_when_not(tmp_path):
    whole = summary(search(tmp_path / "whole", n_trials=4))
    study = search(tmp_path / "cut", n_trials=2)
    study.ask(SPACE.distributions)  # killed before it was marked with its worker: still whole
    study.ask({"optimizer.lr": SPACE.distributions["optimizer.lr"]})  # killed while drawing
    resumed = search(tmp_path / "cut", n_trials=4, resume=True)
    assert summary(resumed)[:3] == whole[:3]  # trial 2 re-run as asked
    assert summary(resumed)[3][1] == TrialState.FAIL


def test_two_workers_share_one_study_and_its_budget(tmp_path):
    launched: dict[int, list[int]] = {0: [], 1: []}
    together = threading.Barrier(2)

    def worker(number: int) -> None:
        def launch(runs):
            launched[number].extend(n for n, _ in runs)
            time.sleep(0.2)  # a job: the other worker asks meanwhile
            return [score(o) for _, o in runs]

        study = study_in(tmp_path, resume=True)
        together.wait()
        Search(study, SPACE, 8, 1, number).run(launch)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(launched[0] + launched[1]) == list(range(8))  # every trial run once
    assert launched[0] and launched[1]
    study = optuna.load_study(
        study_name=STUDY_NAME,
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / JOURNAL_FILE))
        ),
    )
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 8
    # a trial asked past the budget in a race is told failed, never run
    assert all(t.number >= 8 for t in study.get_trials(states=(TrialState.FAIL,)))


# --- the launch: jobs numbered from the trial number ----------------------------------------------


class Launcher:
    def __init__(self):
        self.calls = []

    def launch(self, job_overrides, initial_job_idx):
        self.calls.append(([list(o) for o in job_overrides], initial_job_idx))
        out = []
        for _ in job_overrides:
            ret = JobReturn(overrides=[], status=JobStatus.COMPLETED)
            ret.return_value = 0.5
            out.append(ret)
        return out


def test_trials_of_other_workers_between_leave_job_numbers_free(tmp_path):
    launcher = Launcher()
    runs = [(3, ["a=1"]), (5, ["a=2"]), (6, ["a=3"])]
    scores = run_trials(launcher, runs, 2, tmp_path, -math.inf, extra=["resume=auto"])
    assert scores == [0.5, 0.5, 0.5]
    # trial t is jobs 2t, 2t+1: trial 3 alone, then 5 and 6 together
    assert [idx for _, idx in launcher.calls] == [6, 10]
    assert launcher.calls[0][0] == [
        ["a=1", "resume=auto", "data.fold=0"],
        ["a=1", "resume=auto", "data.fold=1"],
    ]
    records = read_records(tmp_path)
    assert [(r["trial"], r["job"]) for r in records] == [(3, 6), (5, 10), (6, 12)]
    assert records[0]["overrides"] == ["a=1"]  # resume= is how the job ran, not what the trial is


# --- slow: a real search killed and resumed -------------------------------------------------------

TUNE = [
    "-m",
    "+tune=sprn",
    *TINY,
    "hydra.sweeper.params=null",  # a small space, at the tiny batch: seconds a trial
    "logger=none",
    "optimizer.lr=tag(log, interval(1e-4, 1e-1))",
    "loss.margin=interval(0.05, 1.0)",
    "hydra.sweeper.n_trials=10",
    "hydra.sweeper.sampler.n_startup_trials=4",  # TPE proper from trial 4: proposals need history
]


def train(folder: Path, *args: str) -> subprocess.Popen:
    """The search in `folder`, its output in folder.log (a pipe could fill and block it)."""
    cmd = [sys.executable, str(ROOT / "train.py"), *TUNE, f"hydra.sweep.dir={folder}", *args]
    with open(f"{folder}.log", "a") as log:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def tail(folder: Path) -> str:
    return Path(f"{folder}.log").read_text()[-3000:]


def stored(folder: Path) -> list[tuple]:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / JOURNAL_FILE))
    )
    return summary(optuna.load_study(study_name=STUDY_NAME, storage=storage))


@pytest.mark.slow
def test_a_search_killed_mid_trial_resumes_with_resume_auto_to_the_same_best(tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    uninterrupted, killed = train(whole), train(cut)  # side by side: two cores
    running = cut / "6" / "metrics.json"  # trial 6, a TPE proposal, has started
    deadline = time.time() + 600
    while not running.exists():
        assert killed.poll() is None, tail(cut)
        assert time.time() < deadline, f"{running} never appeared"
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    states = [s[1] for s in stored(cut)]
    assert states == [TrialState.COMPLETE] * 6 + [TrialState.RUNNING]
    assert train(cut, "resume=auto").wait(timeout=900) == 0, tail(cut)
    assert uninterrupted.wait(timeout=900) == 0, tail(whole)
    # one study of 10 told trials, proposal for proposal and score for score the uninterrupted one
    assert [s[1] for s in stored(cut)] == [TrialState.COMPLETE] * 10
    assert stored(cut) == stored(whole)
    for name in ("optimization_results.yaml", "search.yaml"):  # the best; the search as run
        assert (cut / name).read_text() == (whole / name).read_text()
    records = read_records(cut)
    assert [r["trial"] for r in records] == list(range(10)) and records == read_records(whole)
