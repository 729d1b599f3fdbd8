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

from siamese.data.sources.synthetic import SyntheticGlyphs
from tests.helpers import ROOT, TINY, write_glyph_folder

pytestmark = pytest.mark.slow


def run_train(
    tmp_path: Path, *overrides: str, check: bool = True, prefix: list[str] = TINY
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "train.py", *prefix, f"hydra.run.dir={tmp_path}", *overrides]
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
    # hparams compares sweep runs side by side; the pictures of issue-sized runs
    assert {"hparams", "histograms", "images", "pr_curves", "scalars"} <= plugins
    projector = tmp_path / "tensorboard" / "projector_config.pbtxt"
    assert "sprite" in projector.read_text() and "metadata.tsv" in projector.read_text()
    for stage in ("val", "test"):  # FNMR at each FMR target, τ chosen on val and applied to test
        assert 0 <= metrics[f"{stage}/fnmr_at_fmr_1e-02"] <= 1
    assert metrics["test/tau_at_fmr_1e-03"] == metrics["val/tau_at_fmr_1e-03"]
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


def test_a_name_that_would_leave_outputs_is_refused_before_any_folder(tmp_path):
    # run from tmp_path: outputs/ would be made there
    cmd = [sys.executable, str(ROOT / "train.py"), *TINY, "name=a/../../escape"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "cannot be part of a folder name" in proc.stderr
    assert not list(tmp_path.rglob("*"))  # no folder at all, inside outputs/ or out of it


def test_an_added_key_nothing_reads_fails_the_run_naming_it(tmp_path):
    proc = run_train(tmp_path, "+embedding.dims=5", check=False)
    assert proc.returncode != 0 and "embedding.dims is not a setting" in proc.stderr
    assert read_metrics(tmp_path)["status"] == "failed"


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
    from siamese.run.record import RunRecord

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


def test_the_glyphs_as_a_png_folder_train_to_the_same_numbers(tmp_path):
    # lossless: decoding the written files gives the glyph tensors back, so every number matches
    glyphs = SyntheticGlyphs(num_classes=20, samples_per_class=6)(image_size=16)
    write_glyph_folder(glyphs, tmp_path / "glyphs")
    run_train(tmp_path / "memory")
    folder = [f"data.root={tmp_path / 'glyphs'}", "data.image_size=16", "data.cache=false"]
    run_train(tmp_path / "folder", "data=folder", "recipe=glyphs", *folder, prefix=["debug=fast"])
    memory, files = read_metrics(tmp_path / "memory"), read_metrics(tmp_path / "folder")
    assert files["choices"]["data"] == "folder"
    assert files["metrics"] == memory["metrics"]


SLOW_WRITER = """
import runpy, sys, time
from tensorboard.summary.writer import record_writer

write = record_writer.RecordWriter.write


def slow(self, data):  # the hparams records reach the disk late, as on a slow filesystem
    if b"hparams" in data:
        time.sleep(1.0)
    return write(self, data)


record_writer.RecordWriter.write = slow
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def test_the_hparams_entry_survives_a_slow_event_writer_in_every_run(tmp_path):
    for i in range(3):
        run_dir = tmp_path / str(i)
        cmd = [
            sys.executable,
            "-c",
            SLOW_WRITER,
            *TINY,
            f"hydra.run.dir={run_dir}",
            "seed=" + str(i),
        ]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        plugins = {
            v.metadata.plugin_data.plugin_name
            for f in (run_dir / "tensorboard").glob("events.out.tfevents.*")
            for e in EventFileLoader(str(f)).Load()
            for v in e.summary.value
        }
        assert "hparams" in plugins, f"run {i} lost its hparams entry"
