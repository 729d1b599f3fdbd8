"""Class-disjoint k-fold over the training classes (data.folds) and the search over folds."""

import math
from pathlib import Path

import pytest
import torch
import yaml
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from hydra_plugins.siamese_tune.tune_sweeper import run_trials
from siamese.compare.collect import read_compare
from siamese.compare.run import confirm_command
from siamese.compare.summary import write_compare_report
from siamese.compare.trials import fold_count, read_records
from siamese.config.checks import ConfigValueError
from siamese.data.splits import split_indices
from siamese.run.build import build_node
from tests.test_compare import compare_dir  # noqa: F401  (a fixture)

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
# 22 classes: 4 test, 18 outside it, so 4 folds hold 5, 5, 4, 4 classes
LABELS = torch.arange(22).repeat_interleave(3)


def classes(index: torch.Tensor) -> set[int]:
    return set(LABELS[index].tolist())


def folds_of(seed: int = 0, k: int = 4) -> list[dict[str, torch.Tensor]]:
    return [split_indices(LABELS, FRACTIONS, "classes", seed, folds=k, fold=f) for f in range(k)]


def test_folds_are_class_disjoint_cover_the_non_test_classes_once_and_keep_test():
    usual = split_indices(LABELS, FRACTIONS, "classes", 0)
    outside_test = classes(usual["train"]) | classes(usual["val"])
    folds = folds_of()
    vals = [classes(f["val"]) for f in folds]
    assert sorted(len(v) for v in vals) == [4, 4, 5, 5]  # near-equal
    assert set().union(*vals) == outside_test and sum(map(len, vals)) == len(outside_test)
    for f, val in zip(folds, vals, strict=True):
        assert torch.equal(f["test"], usual["test"])  # test is never seen, whatever the fold
        assert classes(f["train"]) == outside_test - val
        # every sample of those classes, in exactly one of train and val
        together = torch.cat([f["train"], f["val"]]).sort().values
        assert torch.equal(together, torch.cat([usual["train"], usual["val"]]).sort().values)


def test_folds_are_fixed_by_the_split_seed():
    a, b, other = folds_of(0), folds_of(0), folds_of(1)
    for x, y in zip(a, b, strict=True):
        assert all(torch.equal(x[s], y[s]) for s in x)
    assert [classes(f["val"]) for f in a] != [classes(f["val"]) for f in other]


def test_folds_need_two_classes_each_and_a_class_split_of_free_samples():
    with pytest.raises(ValueError, match="^folds=10 needs at least 20 non-test classes"):
        split_indices(LABELS, FRACTIONS, "classes", 0, folds=10, fold=0)
    with pytest.raises(ValueError, match="^folds must be null with split_by='samples'"):
        split_indices(LABELS, FRACTIONS, "samples", 0, folds=4, fold=0)
    given = torch.full_like(LABELS, -1)
    given[LABELS >= 18] = 2  # a manifest's split column: test given
    with pytest.raises(ValueError, match="^folds=4 is not supported with given splits"):
        split_indices(LABELS, FRACTIONS, "classes", 0, given=given, folds=4, fold=0)


def datamodule(make_config, *overrides):
    cfg = make_config(*overrides)
    dm = build_node(cfg.data, "data", sampler=build_node(cfg.sampler, "sampler"), seed=0)
    dm.setup("fit")
    return dm


def test_the_data_module_trains_on_the_other_folds(make_config):
    usual = datamodule(make_config)
    test = set(usual.splits["test"].class_names)
    seen = []
    for fold in range(4):
        dm = datamodule(make_config, "data.folds=4", f"data.fold={fold}")
        train, val = set(dm.splits["train"].class_names), set(dm.splits["val"].class_names)
        assert set(dm.splits["test"].class_names) == test
        assert not train & val and not (train | val) & test and len(val) == 4
        seen.append(val)
    assert set().union(*seen) == set(usual.splits["train"].class_names) | set(
        usual.splits["val"].class_names
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.folds=1"], "data.folds must be an integer >= 2, got 1"),
        (["data.folds=4", "data.fold=4"], r"data.fold must be in 0..3 \(folds=4\), got 4"),
        (["data.fold=2"], "data.fold must be 0 while folds is null, got 2"),
        (["data.folds=4", "data.split_by=samples"], "data.folds must be null with split_by="),
    ],
)
def test_bad_folds_name_the_key(make_config, overrides, message):
    with pytest.raises(ConfigValueError, match=message):
        datamodule(make_config, *overrides)


# --- the search: a trial is k fold jobs, its objective their mean ---------------------------------


class RecordingLauncher:
    """Records what it was asked to launch; each job returns the next of `values` (an exception
    value: a failed job)."""

    def __init__(self, values):
        self.values, self.calls = list(values), []

    def launch(self, job_overrides, initial_job_idx):
        self.calls.append(([list(o) for o in job_overrides], initial_job_idx))
        out = []
        for _ in job_overrides:
            value = self.values.pop(0)
            failed = isinstance(value, Exception)
            ret = JobReturn(
                overrides=[], status=JobStatus.FAILED if failed else JobStatus.COMPLETED
            )
            ret.return_value = value
            out.append(ret)
        return out


def test_a_trial_runs_as_k_fold_jobs_and_returns_their_mean(tmp_path):
    boom = ValueError("fold went wrong")
    fake = RecordingLauncher([0.2, 0.4, 0.6, boom, 0.1, 0.3])
    batch = [["optimizer.lr=1", "data.folds=2", "data.fold=1"], ["optimizer.lr=2", "data.folds=2"]]
    scores = run_trials(fake, list(enumerate(batch)), 2, tmp_path, -math.inf)
    # Optuna is told one score per trial: the mean, or the worst when a fold failed
    assert scores == [pytest.approx(0.3), -math.inf]
    jobs, first = fake.calls[0]
    assert first == 0
    assert jobs == [
        ["optimizer.lr=1", "data.folds=2", "data.fold=0"],  # a given data.fold is replaced
        ["optimizer.lr=1", "data.folds=2", "data.fold=1"],
        ["optimizer.lr=2", "data.folds=2", "data.fold=0"],
        ["optimizer.lr=2", "data.folds=2", "data.fold=1"],
    ]
    # trial t's jobs are 2t and 2t + 1: trial 2's folders are 4 and 5
    (score,) = run_trials(fake, [(2, ["optimizer.lr=3", "data.folds=2"])], 2, tmp_path, -math.inf)
    assert score == pytest.approx(0.2) and fake.calls[1][1] == 4
    records = read_records(tmp_path)
    assert [(r["trial"], r["job"]) for r in records] == [(0, 0), (1, 2), (2, 4)]
    assert [r["folds"] for r in records] == [[0.2, 0.4], [0.6, None], [0.1, 0.3]]
    assert records[0]["objective"] == pytest.approx(0.3) and records[1]["objective"] is None
    assert records[1]["status"] == "failed"
    assert records[1]["error"] == "fold 1: ValueError: fold went wrong"
    assert records[1]["overrides"] == ["optimizer.lr=2", "data.folds=2"]  # the trial's, no fold


def test_without_folds_a_trial_is_one_job(tmp_path):
    fake = RecordingLauncher([0.5])
    (score,) = run_trials(fake, [(7, ["optimizer.lr=1"])], None, tmp_path, -math.inf)
    assert score == 0.5 and fake.calls == [([["optimizer.lr=1"]], 7)]
    (record,) = read_records(tmp_path)
    assert (record["trial"], record["job"]) == (7, 7) and "folds" not in record


def test_the_sweeper_reads_folds_from_the_composed_config(make_config):
    assert fold_count(make_config("data.folds=4")) == 4
    assert fold_count(make_config()) is None
    assert fold_count(OmegaConf.create({"evaluation": {}})) is None


def test_confirmation_trains_with_folds_off():
    best = ["optimizer.lr=0.001", "+tune=sprn", "data.folds=4", "data.fold=3", "seed=0"]
    cmd = confirm_command("py", "sprn", Path("/c"), best, [1, 2], ["data.folds=4"])
    assert "data.folds=4" not in cmd and "data.fold=3" not in cmd
    assert {"data.folds=null", "data.fold=0", "optimizer.lr=0.001"} <= set(cmd)


def test_the_budget_states_the_folds(compare_dir):  # noqa: F811
    for method in ("sprn", "sdrn"):
        path = compare_dir / "tune" / method / "search.yaml"
        search = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({**search, "folds": 4}))
    assert [m.folds for m in read_compare(compare_dir)[1]] == [4, 4]
    text = write_compare_report(compare_dir)["md"].read_text()
    budget = text.split("## Budget per method")[1].splitlines()
    header = [c.strip() for c in budget[2].split("|")]
    row = [c.strip() for c in budget[4].split("|")]
    assert row[header.index("jobs/trial")] == "4" and row[header.index("method")] == "SPRN"
    assert "Folds: SPRN 4 folds (4 jobs per trial), SDRN 4 folds (4 jobs per trial)." in text
