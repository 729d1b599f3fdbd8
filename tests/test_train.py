"""End to end: `python train.py` as a subprocess on tiny data writes a complete run folder."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from tests.helpers import ROOT, TINY

pytestmark = pytest.mark.slow


def run_train(tmp_path: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "train.py", *TINY, f"hydra.run.dir={tmp_path}", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.parametrize("loss", ["triplet", "contrastive"])
def test_a_run_writes_its_folder_and_finite_metrics(tmp_path, loss):
    run_train(tmp_path, f"loss={loss}")
    record = read_metrics(tmp_path)
    assert record["status"] == "completed" and record["error"] is None
    assert record["choices"]["loss"] == loss and record["seed"] == 0
    metrics = record["metrics"]
    for key in (
        "val/auc",
        "val/p_at_1",
        "test/auc",
        "test/eer",
        "test/accuracy",
        "test/p_at_1",
        "test/recall_at_8",
        "test/map_at_r",
        "test/one_shot_3way",
        "test/p_at_1_untrained",
    ):
        assert math.isfinite(metrics[key]), key
    # τ is chosen on val and applied unchanged to test
    assert record["threshold"] == metrics["val/threshold"] == metrics["test/threshold"]
    assert record["times"]["fit_s"] > 0 and record["throughput"]["fit_images_per_s"] > 0
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / ".hydra/config.yaml").is_file()
    assert (tmp_path / "checkpoints/last.ckpt").is_file()
    assert (tmp_path / "checkpoints/best.ckpt").is_file()
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    plugins = {
        v.metadata.plugin_data.plugin_name
        for f in events
        for e in EventFileLoader(str(f)).Load()
        for v in e.summary.value
    }
    assert "hparams" in plugins  # the hparams tab compares sweep runs side by side
    saved = torch.load(tmp_path / "test_embeddings.pt")
    assert saved["embeddings"].shape == (len(saved["labels"]), 64)


def test_the_same_seed_gives_the_same_numbers(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run_train(a)
    run_train(b)
    run_train(c, "seed=1")
    ma, mb, mc = (read_metrics(d)["metrics"] for d in (a, b, c))
    assert ma == mb
    assert ma != mc


def test_a_run_folder_is_never_reused(tmp_path):
    run_train(tmp_path)
    before = {p: p.read_bytes() for p in [tmp_path / "metrics.json", *tmp_path.glob(".hydra/*")]}
    proc = run_train(tmp_path, "seed=5", check=False)
    assert proc.returncode != 0 and "never reused" in proc.stderr
    assert f"resume={tmp_path}" in proc.stderr  # what to do instead
    # refused before Hydra writes its record: the folder still describes the first run
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("name=a/../../escape", "cannot be part of a folder name"),
        ("+foo=1", "foo is not a setting"),
    ],
)
def test_bad_names_and_added_keys_are_refused(tmp_path, override, message):
    # run from tmp_path: outputs/ would be made there
    cmd = [sys.executable, str(ROOT / "train.py"), *TINY, override]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and message in proc.stderr
    assert not (tmp_path / "escape").exists() and not list(tmp_path.glob("**/metrics.json"))


def test_a_failing_run_records_status_failed_and_the_error(tmp_path):
    # 6 is no multiple of 4 samples per class: the P×K sampler refuses at the first batch
    proc = run_train(tmp_path, "loss=triplet_batch_hard", "data.batch_size=6", check=False)
    assert proc.returncode != 0
    record = read_metrics(tmp_path)
    assert record["status"] == "failed"
    assert "data.batch_size=6 must be a multiple" in record["error"]["message"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.lr=abc", "optimizer.lr"),
        ("loss.margin=-1", "loss.margin must be > 0"),
        ("trainer.max_epochs=0", "trainer.max_epochs must be > 0"),
        ("loss=tripplet", "tripplet"),
    ],
)
def test_bad_override_exits_non_zero_with_the_key(tmp_path, override, message):
    proc = run_train(tmp_path, override, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_ddp_on_two_cpu_processes_writes_one_record(tmp_path):
    # Lightning starts rank 1 by re-running train.py into the same folder: only rank 0 writes
    proc = run_train(
        tmp_path, "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"
    )
    record = read_metrics(tmp_path)
    assert record["status"] == "completed", proc.stderr[-2000:]
    assert math.isfinite(record["metrics"]["test/p_at_1"])
    assert (tmp_path / "test_embeddings.pt").is_file()


def test_only_a_requeued_slurm_job_may_rerun_in_its_running_folder(tmp_path):
    from siamese.record import RunRecord

    RunRecord(tmp_path, {})  # a job preempted mid-run: its record says running
    with pytest.raises(FileExistsError, match="never reused"):
        RunRecord(tmp_path, {})
    os.environ["SLURM_RESTART_COUNT"] = "1"
    try:
        RunRecord(tmp_path, {}).complete()  # the requeued job takes its folder back
        with pytest.raises(FileExistsError):  # but never a finished run's
            RunRecord(tmp_path, {})
    finally:
        del os.environ["SLURM_RESTART_COUNT"]
