"""The sweep report on a synthetic sweep folder whose numbers are computed by hand below."""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from siamese.report import collect, latest_sweep, paired_difference, summarize, t_quantile
from siamese.report.markdown import verdict
from siamese.report.pairing import skip_reason
from siamese.report.render import markdown_table
from siamese.report.stats import Difference
from siamese.report.write import write_report

# test/p_at_1 per (experiment, optimizer), seeds 0, 1, 2
P_AT_1 = {
    ("sprn", "adam"): [0.80, 0.82, 0.84],  # mean 0.82, std 0.02: the best cell
    ("sprn", "adagrad"): [0.70, 0.74, 0.72],  # mean 0.72, std 0.02
    ("sdrn", "adam"): [0.78, 0.78, 0.81],  # mean 0.79, std √0.0003
    ("sdrn", "adagrad"): [0.69, 0.70, 0.71],  # mean 0.70, std 0.01
}
# test/accuracy: SPRN − SDRN differences that straddle 0
ACCURACY = {
    ("sprn", "adam"): [0.90, 0.80, 0.86],
    ("sprn", "adagrad"): [0.84, 0.86, 0.80],
    ("sdrn", "adam"): [0.85, 0.85, 0.85],
    ("sdrn", "adagrad"): [0.85, 0.85, 0.85],
}
COMMON = "trainer.max_epochs=1"  # shared by every job: not part of a cell's label
FAILED_MESSAGE = "loss is NaN at step 12"


def metrics(exp: str, opt: str, seed: int) -> dict[str, float]:
    p = P_AT_1[exp, opt][seed]
    return {
        "val/auc": 0.5,
        "test/one_shot_5way": p + 0.1,
        "test/eer": p - 0.6,  # lowest, so best, in sdrn adagrad
        "test/auc": 0.90 + 0.01 * seed,  # the same in every cell: no best, no difference
        "test/p_at_1": p,
        "test/recall_at_2": p + 0.05,
        "test/recall_at_1": p,
        "test/map_at_r": p - 0.3,
        "test/accuracy": ACCURACY[exp, opt][seed],
        "test/threshold": 1.2,
        "test/p_at_1_untrained": 0.35,
    }


def write_job(root: Path, number: int, overrides: list[str], record: dict | None) -> None:
    folder = root / str(number)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if record is not None:
        (folder / "metrics.json").write_text(json.dumps({"overrides": overrides, **record}))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    number = 0
    for exp in ("sprn", "sdrn"):
        for opt in ("adam", "adagrad"):
            for seed in (0, 1, 2):
                overrides = [f"experiment={exp}", f"seed={seed}", f"optimizer={opt}", COMMON]
                record = {"status": "completed", "error": None, "name": exp, "seed": seed}
                write_job(root, number, overrides, {**record, "metrics": metrics(exp, opt, seed)})
                number += 1
    error = {"type": "FloatingPointError", "message": FAILED_MESSAGE, "traceback": "..."}
    failed = {"status": "failed", "error": error, "seed": 0, "metrics": {}}
    write_job(root, 12, ["experiment=sdrn", "optimizer=sgd", "seed=0", COMMON], failed)
    write_job(root, 13, ["experiment=sprn", "optimizer=sgd", "seed=0", COMMON], None)
    killed = {"status": "running", "error": None, "seed": 1, "metrics": {}}
    write_job(root, 14, ["experiment=sprn", "optimizer=sgd", "seed=1", COMMON], killed)
    (root / "multirun.yaml").write_text(
        "hydra:\n  sweeper:\n    params:\n      experiment: sprn,sdrn\n"
        "      optimizer: adam,adagrad\n      seed: 0,1,2\n"
    )
    return root


def sample_std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def rows_by_label(table):
    return {row.label: row for row in table.rows}


@pytest.mark.parametrize(
    "df, expected", [(1, 12.706), (2, 4.303), (5, 2.571), (10, 2.228), (30, 2.042)]
)
def test_t_quantile_matches_the_table(df, expected):
    assert t_quantile(df) == pytest.approx(expected, abs=5e-4)


def test_t_quantile_other_levels_and_large_df():
    assert t_quantile(4, 0.995) == pytest.approx(4.604, abs=5e-4)
    assert t_quantile(10, 0.025) == pytest.approx(-2.228, abs=5e-4)
    assert t_quantile(10_000) == pytest.approx(1.960, abs=1e-3)  # → the normal quantile


def test_collect_sorts_jobs_into_completed_failed_missing(sweep):
    jobs, failed, missing = collect(sweep)
    assert len(jobs) == 12
    assert [j.number for j in failed] == [12]
    assert failed[0].problem == f"FloatingPointError: {FAILED_MESSAGE}"
    assert [j.number for j in missing] == [13, 14]
    # the missing job's cell and seed come from .hydra/overrides.yaml
    assert missing[0].cell == ("experiment=sprn", "optimizer=sgd", COMMON)  # sorted by key
    assert missing[0].seed == "0"
    assert "running" in missing[1].problem
    assert jobs[0].cell == ("experiment=sprn", "optimizer=adam", COMMON)


def test_summarize_mean_std_n_per_cell(sweep):
    jobs, failed, missing = collect(sweep)
    table = summarize(jobs, [*failed, *missing])
    assert table.keys == ["experiment", "optimizer"]
    assert table.common == [COMMON]
    labels = [row.label for row in table.rows]
    assert labels == sorted(labels)
    rows = rows_by_label(table)
    row = rows["experiment=sdrn optimizer=adam"]
    assert row.n == 3
    mean, std = row.stats["test/p_at_1"]
    assert mean == pytest.approx(0.79)
    assert std == pytest.approx(math.sqrt(0.0003))
    assert std == pytest.approx(sample_std(P_AT_1["sdrn", "adam"]))
    # a cell where no seed completed still shows, empty
    assert rows["experiment=sdrn optimizer=sgd"].n == 0
    assert rows["experiment=sdrn optimizer=sgd"].stats["test/p_at_1"] == (None, None)


def test_metric_columns_are_test_metrics_in_order(sweep):
    table = summarize(collect(sweep)[0])
    assert table.metrics == [
        "test/p_at_1",
        "test/recall_at_1",
        "test/recall_at_2",
        "test/map_at_r",
        "test/auc",
        "test/eer",
        "test/accuracy",
        "test/one_shot_5way",
        "test/p_at_1_untrained",
    ]


def test_best_marks_highest_or_lowest_for_eer(sweep):
    table = summarize(collect(sweep)[0])
    assert table.best["test/p_at_1"] == {"experiment=sprn optimizer=adam"}
    assert table.best["test/eer"] == {"experiment=sdrn optimizer=adagrad"}
    assert table.best["test/auc"] == set()  # a tie in every cell marks none
    assert table.best["test/p_at_1_untrained"] == set()
    lines = markdown_table(table).splitlines()
    sprn_adam = next(line for line in lines if "| sprn" in line and "adam " in line)
    assert "**0.820 ± 0.020**" in sprn_adam
    sdrn_adagrad = next(line for line in lines if "| sdrn" in line and "adagrad" in line)
    assert "**0.100 ± 0.010**" in sdrn_adagrad  # eer
    assert sdrn_adagrad.count("**") == 2  # that one value only


def test_a_single_seed_has_no_std(sweep):
    jobs = [j for j in collect(sweep)[0] if j.seed == "0"]
    table = summarize(jobs)
    row = rows_by_label(table)["experiment=sprn optimizer=adam"]
    assert row.n == 1
    assert row.stats["test/p_at_1"] == (pytest.approx(0.80), None)
    assert "0.800 ± —" in markdown_table(table)


def test_paired_difference_against_a_hand_computation(sweep):
    jobs = collect(sweep)[0]
    d = [
        P_AT_1["sprn", opt][seed] - P_AT_1["sdrn", opt][seed]
        for opt in ("adam", "adagrad")
        for seed in (0, 1, 2)
    ]  # 0.02 0.04 0.03 0.01 0.04 0.01
    assert sum(d) / 6 == pytest.approx(0.025)
    half = 2.5706 * math.sqrt(0.00095 / 5) / math.sqrt(6)  # t(5) · sd / √n
    diff = paired_difference(jobs, "test/p_at_1")
    assert diff.n == 6
    assert diff.mean == pytest.approx(0.025)
    assert diff.low == pytest.approx(0.025 - half, abs=1e-5)
    assert diff.high == pytest.approx(0.025 + half, abs=1e-5)
    assert diff.significant
    auc = paired_difference(jobs, "test/auc")
    assert (auc.mean, auc.low, auc.high) == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)
    assert not auc.significant


def test_the_comparison_is_skipped_without_an_axis_or_pairs(sweep):
    jobs = collect(sweep)[0]
    assert skip_reason(jobs) is None
    only_sprn = [j for j in jobs if "experiment=sprn" in j.cell]
    assert "do not span" in skip_reason(only_sprn)
    one_pair = [j for j in jobs if j.seed == "0" and "optimizer=adam" in j.cell]
    assert "1 SPRN/SDRN pair(s)" in skip_reason(one_pair)
    assert paired_difference(one_pair, "test/p_at_1") is None


@pytest.mark.parametrize(
    "metric, mean, winner",
    [
        ("test/p_at_1", 0.02, "SPRN is better,"),
        ("test/p_at_1", -0.02, "SDRN is better,"),
        ("test/eer", 0.02, "SDRN is better (lower is better),"),
        ("test/fnmr_at_fmr_1e-03", -0.02, "SPRN is better (lower is better),"),
    ],
)
def test_the_verdict_names_the_better_side(metric, mean, winner):
    diff = Difference(mean, mean - 0.01, mean + 0.01, 4)
    sentence = verdict(metric, diff, "SPRN", "SDRN", "seeds")
    assert sentence.startswith(f"{metric}: SPRN − SDRN = {'+' if mean > 0 else '−'}0.020 ")
    assert "n = 4 seeds" in sentence and sentence.endswith(f"{winner} significant at 95%.")
    assert "no interval" in verdict(metric, None, "SPRN", "SDRN", "pairs")
    equal = verdict(metric, Difference(0.0, 0.0, 0.0, 3), "SPRN", "SDRN", "pairs")
    assert equal.endswith("no difference, equal in all 3 pairs.")


def test_write_report_writes_md_csv_png(sweep):
    paths = write_report(sweep)
    assert set(paths) == {"md", "csv", "png"}
    assert all(p.parent == sweep for p in paths.values())

    md = paths["md"].read_text()
    assert "Jobs: 15: 12 completed, 1 failed, 2 missing." in md
    assert "Grid: `experiment=sprn,sdrn` `optimizer=adam,adagrad` `seed=0,1,2`" in md
    assert f"Every job: `{COMMON}`" in md
    assert (
        "test/p_at_1: SPRN − SDRN = +0.025 (95% CI +0.011 to +0.039, n = 6 pairs): "
        "SPRN is better, significant at 95%."
    ) in md
    assert "test/accuracy: SPRN − SDRN = −0.007" in md
    assert "not significant" in md.split("test/accuracy:")[1].splitlines()[0]
    assert (
        "test/eer: SPRN − SDRN = +0.025 (95% CI +0.011 to +0.039, n = 6 pairs): "
        "SDRN is better (lower is better), significant at 95%."
    ) in md
    untrained = md.split("test/p_at_1_untrained: ")[1].splitlines()[0]
    assert untrained.endswith("a baseline of the untrained network, not a result.")
    failed_line = next(line for line in md.splitlines() if line.startswith("- failed job 12"))
    assert f"FloatingPointError: {FAILED_MESSAGE}" in failed_line
    assert str((sweep / "12").resolve()) in failed_line
    assert "- missing job 13 (" in md and "no metrics.json" in md
    assert "- missing job 14 (" in md and "'running'" in md
    assert md.index("## Test metrics") < md.index("## SPRN") < md.index("## Failed")

    with paths["csv"].open() as f:
        rows = {row["cell"]: row for row in csv.DictReader(f)}
    assert len(rows) == 6
    row = rows["experiment=sprn optimizer=adagrad"]
    assert (row["experiment"], row["optimizer"], row["n"]) == ("sprn", "adagrad", "3")
    assert float(row["test/p_at_1_mean"]) == pytest.approx(0.72)
    assert float(row["test/p_at_1_std"]) == pytest.approx(0.02)
    assert "test/threshold_mean" not in row and "val/auc_mean" not in row
    assert rows["experiment=sprn optimizer=adam"]["best"].split() == [
        "test/p_at_1",
        "test/recall_at_1",
        "test/recall_at_2",
        "test/map_at_r",
        "test/accuracy",  # 0.853 against 0.850, 0.833 and 0.850
        "test/one_shot_5way",
    ]
    assert rows["experiment=sdrn optimizer=adagrad"]["best"] == "test/eer"
    assert rows["experiment=sdrn optimizer=sgd"]["test/p_at_1_mean"] == ""
    assert rows["experiment=sdrn optimizer=sgd"]["n"] == "0"

    png = paths["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 10_000


def test_latest_sweep_is_the_newest_folder(tmp_path):
    root = tmp_path / "sweeps"
    for i, name in enumerate(["b_old", "a_new"]):
        (root / name).mkdir(parents=True)
        os.utime(root / name, (1_000_000 + i, 1_000_000 + i))
    assert latest_sweep(root) == root / "a_new"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "siamese.report", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_cli_prints_the_table_and_exits_0_despite_failed_jobs(sweep, tmp_path):
    proc = run_cli(str(sweep), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "| experiment | optimizer | p_at_1" in proc.stdout
    assert "**0.820 ± 0.020**" in proc.stdout
    assert FAILED_MESSAGE in proc.stdout
    for name in ("report.md", "report.csv", "report.png"):
        assert f"wrote {sweep / name}" in proc.stdout


def test_cli_without_argument_reports_the_newest_sweep(sweep, tmp_path):
    sweeps = tmp_path / "outputs" / "sweeps"
    sweeps.mkdir(parents=True)
    sweep.rename(sweeps / "2026-01-01_sweep")
    (sweeps / "2026-01-01_sweep" / "multirun.yaml").unlink()  # optional: the jobs are enough
    proc = run_cli(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    md = (sweeps / "2026-01-01_sweep" / "report.md").read_text()
    assert "Grid:" not in md and "SPRN is better" in md


def test_cli_fails_naming_a_missing_or_empty_folder(tmp_path):
    proc = run_cli(str(tmp_path / "nowhere"), cwd=tmp_path)
    assert proc.returncode != 0
    assert str(tmp_path / "nowhere") in proc.stderr and "does not exist" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run_cli(str(tmp_path / "empty"), cwd=tmp_path)
    assert proc.returncode != 0
    assert str(tmp_path / "empty") in proc.stderr and "no job folders" in proc.stderr
    proc = run_cli(cwd=tmp_path / "empty")  # no outputs/sweeps/ there
    assert proc.returncode != 0
    assert "no sweep folder under outputs/sweeps" in proc.stderr


def three_job_sweep(root: Path, sweeper: str = "") -> Path:
    """The issue's case: a 3-job grid whose sweep was stopped after job 1."""
    record = {
        "status": "completed",
        "error": None,
        "seed": 0,
        "metrics": metrics("sprn", "adam", 0),
    }
    write_job(root, 0, ["experiment=sprn", "seed=0", COMMON], record)
    failed = {"status": "failed", "error": {"type": "Interrupted", "message": "SIGTERM"}}
    write_job(root, 1, ["experiment=sprn", "seed=1", COMMON], failed | {"seed": 1})
    (root / "multirun.yaml").write_text(
        f"hydra:\n  sweeper:\n{sweeper}    params:\n      seed: 0,1\n"
        f"  overrides:\n    task:\n    - experiment=sprn\n    - seed=0,1,2\n    - {COMMON}\n"
    )
    return root


def test_jobs_that_never_started_count_against_the_grid(tmp_path):
    sweep = three_job_sweep(tmp_path / "s")
    jobs, failed, missing = collect(sweep)
    assert [j.number for j in jobs] == [0] and [j.number for j in failed] == [1]
    # the command line's seed=0,1,2 wins over the sweeper's params: 3 jobs, job 2 never ran
    [never] = missing
    assert never.number == 2 and never.problem == "never started"
    assert never.cell == ("experiment=sprn", COMMON) and never.seed == "2"
    paths = write_report(sweep)  # the report lists it with the others
    assert "never started" in paths["md"].read_text()


def test_another_sweeper_has_no_grid_to_count(tmp_path):
    target = "    _target_: hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper\n"
    jobs, failed, missing = collect(three_job_sweep(tmp_path / "s", target))
    assert (len(jobs), len(failed), len(missing)) == (1, 1, 0)


def test_a_sweep_stopped_before_its_first_job_reports_every_job_missing(tmp_path):
    sweep = tmp_path / "s"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text(
        "hydra:\n  sweeper:\n    params:\n      optimizer: adam,sgd\n      seed: 0,1\n"
    )
    jobs, failed, missing = collect(sweep)
    assert not jobs and not failed
    assert [(j.cell, j.seed) for j in missing] == [
        (("optimizer=adam",), "0"),
        (("optimizer=adam",), "1"),
        (("optimizer=sgd",), "0"),
        (("optimizer=sgd",), "1"),
    ]
