"""The tuned comparison: the tune sweeper's failure handling, the compare report on a hand-written
compare folder (numbers computed by hand below), and, slow, a tiny compare end to end."""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.core.utils import JobReturn, JobStatus

from hydra_plugins.siamese_tune.tune_sweeper import run_trials
from siamese.compare.collect import images_per_step, read_compare
from siamese.compare.controls import controls
from siamese.compare.run import confirm_command, confirm_seeds
from siamese.compare.summary import paired, write_compare_report
from siamese.compare.trials import check_direction, read_records
from siamese.report.__main__ import main as report_main
from siamese.report.markdown import verdict
from siamese.run.build import build_node
from tests.helpers import CONF, ROOT, TINY

# --- the sweeper: a failed trial is the worst score, never an exception ----------------------------


class FakeLauncher:
    def __init__(self, returns):
        self.returns = returns

    def launch(self, job_overrides, initial_job_idx):
        return self.returns


def job_return(status, value):
    ret = JobReturn(overrides=[], status=status)
    ret.return_value = value
    return ret


@pytest.mark.parametrize("direction, worst", [("maximize", -math.inf), ("minimize", math.inf)])
def test_failed_and_non_numeric_trials_come_back_as_the_worst_score(tmp_path, direction, worst):
    returns = [
        job_return(JobStatus.COMPLETED, 0.4),
        job_return(JobStatus.FAILED, ValueError("data.batch_size=6 is no multiple of 4")),
        job_return(JobStatus.COMPLETED, float("nan")),
        job_return(JobStatus.COMPLETED, None),
    ]
    runs = [(10 + i, [f"optimizer.lr={i}"]) for i in range(4)]
    scores = run_trials(FakeLauncher(returns), runs, None, tmp_path, worst)
    # what Optuna is told: no exception, the worst score for each bad trial
    assert scores == [0.4, worst, worst, worst]
    records = read_records(tmp_path)
    assert [r["trial"] for r in records] == [10, 11, 12, 13]
    assert [r["status"] for r in records] == ["completed", "failed", "failed", "failed"]
    assert [r["objective"] for r in records] == [0.4, None, None, None]
    assert "ValueError: data.batch_size=6" in records[1]["error"]
    assert records[2]["overrides"] == ["optimizer.lr=2"]


def test_the_sweep_direction_must_agree_with_evaluation_mode():
    check_direction("maximize", "max")
    check_direction("minimize", "min")
    with pytest.raises(
        ValueError, match="hydra.sweeper.direction=minimize but evaluation.mode=max"
    ):
        check_direction("minimize", "max")


def test_every_method_searches_the_same_images_per_step(make_config):
    # data.images_per_step in tune/common.yaml, shared out into tuples: no method sets batch_size
    for method, tuple_size in (("sprn", 3), ("sdrn", 2)):
        spec = yaml.safe_load((CONF / "tune" / f"{method}.yaml").read_text())
        assert "data.batch_size" not in spec["hydra"]["sweeper"]["params"]
        cfg = make_config(f"+tune={method}", "data.images_per_step=192")
        datamodule = build_node(
            cfg.data, "data", sampler=build_node(cfg.sampler, "sampler"), seed=0
        )
        datamodule.setup("fit")  # the sampler, and with it the batch in tuples, comes with setup
        assert datamodule.batch_size * datamodule.tuple_size == 192
        assert datamodule.tuple_size == tuple_size
    common = yaml.safe_load((CONF / "tune" / "common.yaml").read_text())
    assert "choice(" in common["hydra"]["sweeper"]["params"]["data.images_per_step"]


def test_confirmation_reruns_the_best_trial_over_fresh_seeds_with_the_basic_sweeper():
    best = ["optimizer.lr=0.001", "+tune=sprn", "seed=0", "data.image_size=16"]
    shared = ["hydra/launcher=ray", "hydra.sweeper.n_jobs=4", "data.image_size=16"]
    cmd = confirm_command("py", "sprn", Path("/c"), best, [1, 2], shared)
    assert cmd[:4] == ["py", "-m", "siamese.train", "-m"]
    assert "seed=0" not in cmd and "seed=1,2" in cmd
    assert {"optimizer.lr=0.001", "+tune=sprn", "hydra/launcher=ray"} <= set(cmd)
    assert "hydra.sweeper.n_jobs=4" not in cmd  # an Optuna setting: the basic sweeper has none
    assert {"hydra/sweeper=basic", "hydra.sweeper.params=null"} <= set(cmd)
    assert cmd[-1] == "hydra.sweep.dir=/c/confirm/sprn"
    assert confirm_seeds(3, 0) == [1, 2, 3]
    assert confirm_seeds(3, 1) == [0, 2, 3]


# --- the report on a hand-written compare folder --------------------------------------------------

# per method: tuning objectives (None: failed), and test/p_at_1 and test/map_at_r per confirm seed
TUNE = {"sprn": [0.30, None, 0.50, 0.40], "sdrn": [0.20, 0.45, 0.35, 0.10]}
P_AT_1 = {"sprn": {1: 0.80, 2: 0.82, 3: 0.84}, "sdrn": {1: 0.70, 2: 0.71, 3: 0.72}}
MAP_AT_R = {"sprn": {1: 0.50, 2: 0.40, 3: 0.45}, "sdrn": {1: 0.45, 2: 0.45, 3: 0.45}}
BATCH = {"sprn": 64, "sdrn": 96}  # 192 images per step each


def config(method: str, seed: int) -> dict:
    loss = (
        {"_target_": "siamese.losses.TripletLoss", "margin": 0.5, "squared_distance": True}
        if method == "sprn"
        else {"_target_": "siamese.losses.SDRNLoss", "margin": 0.5, "lam": 1.0}
    )
    sampler = "TripletSampler" if method == "sprn" else "PairSampler"
    return {
        "name": f"tune_{method}",
        "seed": seed,
        "data": {"batch_size": BATCH[method], "steps_per_epoch": 30, "image_size": 32},
        "trainer": {"max_epochs": 2},
        "loss": loss,
        "sampler": {"_target_": f"siamese.data.{sampler}"},
        "optimizer": {"lr": 0.001},
        "evaluation": {"monitor": "val/map_at_r", "mode": "max"},
    }


def write_job(folder: Path, overrides, record: dict, cfg: dict | None) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / "metrics.json").write_text(json.dumps({"overrides": overrides, **record}))
    if cfg is not None:
        (folder / "config.yaml").write_text(yaml.safe_dump(cfg))


@pytest.fixture
def compare_dir(tmp_path: Path) -> Path:
    root = tmp_path / "2026-11-24_00-00-00_000000_test"
    meta = {"methods": ["sprn", "sdrn"], "phases": {"tune/sprn": {"wall_s": 40.0}}}
    for method, objectives in TUNE.items():
        tune = root / "tune" / method
        records = []
        for n, value in enumerate(objectives):
            overrides = [f"optimizer.lr=0.00{n + 1}", f"+tune={method}"]
            records.append(
                {
                    "trial": n,
                    "job": n,
                    "overrides": overrides,
                    "status": "completed" if value is not None else "failed",
                    "objective": value,
                    "error": None if value is not None else "ValueError: boom",
                }
            )
            times = {"total_s": 10.0}
            if value is None:
                record = {"status": "failed", "error": {"type": "ValueError", "message": "boom"}}
                write_job(tune / str(n), overrides, {**record, "times": times}, None)
            else:
                metrics = {"val/map_at_r": value, "test/map_at_r": value + 0.1}
                record = {"status": "completed", "seed": 0, "metrics": metrics, "times": times}
                write_job(tune / str(n), overrides, record, config(method, 0))
        (tune / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        search = {
            "direction": "maximize",
            "params": {"optimizer.lr": "tag(log, interval(1e-4, 1e-2))"},
        }
        (tune / "search.yaml").write_text(yaml.safe_dump(search))
        # confirmation jobs written out of seed order: pairing must go by seed
        seeds = [3, 1, 2] if method == "sdrn" else [1, 2, 3]
        for n, seed in enumerate(seeds):
            metrics = {
                "test/p_at_1": P_AT_1[method][seed],
                "test/map_at_r": MAP_AT_R[method][seed],
                "test/p_at_1_untrained": 0.3,
                "test/threshold": 1.0,
            }
            record = {"status": "completed", "seed": seed, "metrics": metrics}
            overrides = ["optimizer.lr=0.003", f"+tune={method}", f"seed={seed}"]
            write_job(root / "confirm" / method / str(n), overrides, record, config(method, seed))
    (root / "compare.json").write_text(json.dumps(meta))
    return root


def test_differences_pair_by_seed_with_a_t_interval(compare_dir):
    _, (sprn, sdrn) = read_compare(compare_dir)
    d = paired(sprn, sdrn, "test/p_at_1")  # differences 0.10, 0.11, 0.12: sd 0.01, t(2) = 4.303
    assert d.n == 3 and d.mean == pytest.approx(0.11)
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert (d.low, d.high) == (pytest.approx(0.11 - half), pytest.approx(0.11 + half))
    sentence = verdict("test/p_at_1", d, "SPRN", "SDRN", "seeds")
    assert sentence.endswith("SPRN is better, significant at 95%.")
    m = paired(sprn, sdrn, "test/map_at_r")  # +0.05, −0.05, 0: the interval spans 0
    assert m.mean == pytest.approx(0.0) and not m.significant
    assert "not significant" in verdict("test/map_at_r", m, "SPRN", "SDRN", "seeds")


def test_tuning_curves_keep_the_best_so_far_and_failures_count_as_trials(compare_dir):
    _, (sprn, sdrn) = read_compare(compare_dir)
    assert sprn.best_so_far() == [0.30, 0.30, 0.50, 0.50]
    assert sdrn.best_so_far() == [0.20, 0.45, 0.45, 0.45]
    assert sprn.best_trial().number == 2 and sdrn.best_trial().number == 1
    assert len(sprn.trials) == len(sdrn.trials) == 4


def test_controls_name_what_is_equal_and_what_differs(compare_dir):
    _, (sprn, sdrn) = read_compare(compare_dir)
    space_a = {"optimizer.lr": "interval(1e-4, 1e-2)", "loss.margin": "interval(0.01, 2)"}
    space_b = {
        "optimizer.lr": "interval(1e-4, 1e-2)",
        "loss.margin": "interval(0.05, 4)",
        "loss.lam": "x",
    }
    c = controls(sprn.best_config, sdrn.best_config, space_a, space_b)
    assert (c.tuned_both, c.tuned_own) == (["optimizer.lr"], ["loss.margin"])
    assert (c.tuned_only_a, c.tuned_only_b) == ([], ["loss.lam"])
    assert "data.steps_per_epoch" in c.equal["data"] and "trainer.max_epochs" in c.equal["trainer"]
    assert c.differ["data.batch_size"] == (64, 96)
    assert c.differ["loss._target_"] == ("siamese.losses.TripletLoss", "siamese.losses.SDRNLoss")
    assert c.only_b == {"loss.lam": 1.0} and c.only_a == {"loss.squared_distance": True}
    assert c.margin_units == ("d²", "d")
    assert "seed" not in c.differ  # confirmation seeds differ by design
    assert images_per_step(sprn.best_config) == images_per_step(sdrn.best_config) == 192


def test_images_per_step_come_from_the_sampler_class():
    data = {"batch_size": 10}
    for target, size in (
        ("siamese.data.samplers.TripletSampler", 3),  # today's layout
        ("siamese.data.PairSampler", 2),  # stored by runs of the earlier layout
        ("siamese.data.samplers.PKSampler", 1),  # P×K batches count images already
    ):
        assert images_per_step({"data": data, "sampler": {"_target_": target}}) == 10 * size
    assert images_per_step({"data": data, "sampler": {"_target_": "nowhere.Sampler"}}) is None
    assert images_per_step({"data": data}) is None
    assert images_per_step({"data": {**data, "images_per_step": 192}}) == 192


def test_the_report_files(compare_dir):
    paths = write_compare_report(compare_dir)
    text = paths["md"].read_text()
    assert "Trials per method: SPRN 4, SDRN 4 (equal)." in text
    assert "Confirmation seeds per method: SPRN 3/3, SDRN 3/3." in text
    assert "test/map_at_r: SPRN − SDRN = 0.000" in text and "not significant" in text
    assert "`loss.margin` is in d² units for SPRN and d for SDRN" in text
    assert "only SDRN has: `loss.lam=1.0`" in text
    assert "SPRN tune job 1: failed: ValueError: boom" in text
    # budget: 3 trials wrote a config (one failed before), each 30 × 2 steps of 192 images
    budget_table = text.split("## Budget", 1)[1].splitlines()
    budget = next(line for line in budget_table if line.startswith("| SPRN "))
    cells = [c.strip() for c in budget.strip("|").split("|")]
    assert cells[1:8] == ["4", "1", "2", "180", str(180 * 192), "40 s", "40 s"]  # 1 job/trial
    rows = {r["metric"]: r for r in csv.DictReader(paths["csv"].open())}
    assert float(rows["test/p_at_1"]["diff_mean"]) == pytest.approx(0.11)
    assert rows["test/p_at_1"]["significant"] == "true"
    assert rows["test/map_at_r"]["significant"] == "false"
    assert float(rows["test/p_at_1_untrained"]["sprn_mean"]) == pytest.approx(0.3)
    assert "test/threshold" not in rows
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_the_report_cli_recognises_a_compare_folder(compare_dir, capsys):
    assert report_main([str(compare_dir)]) == 0
    out = capsys.readouterr().out
    assert "# Compare report" in out and (compare_dir / "tuning.png").exists()


# --- slow: the real thing on tiny data ------------------------------------------------------------


def run(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=900, env=env
    )


@pytest.mark.slow
def test_a_tiny_compare_end_to_end_never_reads_test_metrics(tmp_path):
    proc = run(
        ["-m", "siamese.compare", "--trials", "2", "--seeds", "2", "--root", str(tmp_path)] + TINY
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = tmp_path.iterdir()
    for name in ("report.md", "report.csv", "tuning.png", "compare.json"):
        assert (folder / name).exists()
    text = (folder / "report.md").read_text()
    assert "Trials per method: SPRN 2, SDRN 2 (equal)." in text
    assert "Confirmation seeds per method: SPRN 2/2, SDRN 2/2." in text
    for method in ("sprn", "sdrn"):
        records = read_records(folder / "tune" / method)
        assert len(records) == 2
        for r in records:  # the objective the sweeper told Optuna is the job's val metric
            metrics = json.loads(
                (folder / "tune" / method / str(r["job"]) / "metrics.json").read_text()
            )
            assert r["objective"] == metrics["metrics"]["val/map_at_r"]
            assert r["objective"] != metrics["metrics"]["test/map_at_r"]
        seeds = sorted(
            json.loads(p.read_text())["seed"]
            for p in (folder / "confirm" / method).glob("*/metrics.json")
        )
        assert seeds == [1, 2]  # fresh seeds: the tuned run (seed 0) is not re-used
    assert run(["-m", "siamese.report", str(folder)]).returncode == 0


@pytest.mark.slow
def test_a_failed_trial_is_the_worst_score_and_the_search_goes_on(tmp_path):
    # batch-hard needs batches that are multiples of 4: a trial with 6 fails, one with 8 completes
    proc = run(
        [
            "train.py",
            "-m",
            "+tune=sprn",
            *(o for o in TINY if not o.startswith("data.batch_size=")),  # fixed: not searched
            "hydra.sweeper.params=null",
            "loss=triplet_batch_hard",
            "data.batch_size=choice(6,8)",
            "hydra/sweeper/sampler=optuna_random",
            "hydra.sweeper.n_trials=3",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_records(tmp_path)
    assert len(records) == 3
    assert [r["status"] for r in records] == [
        "failed" if "data.batch_size=6" in r["overrides"] else "completed" for r in records
    ]
    assert {r["status"] for r in records} == {"failed", "completed"}, records
    first_failure = next(i for i, r in enumerate(records) if r["status"] == "failed")
    assert first_failure < len(records) - 1  # a trial ran after it
    assert (tmp_path / "optimization_results.yaml").exists()
