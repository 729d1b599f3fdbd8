"""Runs that survive: killed or signalled mid-epoch, then resumed, number for number; sweeps
re-run with resume=auto; the README's resume commands."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from siamese.report import collect
from tests.helpers import ROOT, TINY
from tests.test_readme import RESUME

pytestmark = pytest.mark.slow
# long enough to be stopped mid-epoch after a step checkpoint
LONGER = [*TINY, "data.steps_per_epoch=30", "trainer.max_epochs=2", "checkpoint.every_n_steps=10"]


def train(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "train.py"), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)


def start(*args: str) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "train.py"), *args]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("whole")
    proc = train(*LONGER, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return record(run_dir)["metrics"]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_run_stopped_mid_epoch_resumes_to_the_same_numbers(tmp_path, uninterrupted, signum):
    proc = start(*LONGER, f"hydra.run.dir={tmp_path}")
    wait_for(tmp_path / "checkpoints" / "last.ckpt", proc)  # step 10 of 30: mid-epoch
    proc.send_signal(signum)
    assert proc.wait(timeout=120) == (-9 if signum == signal.SIGKILL else 128 + signum)
    stopped = record(tmp_path)
    if signum == signal.SIGTERM:  # recorded where it stopped, with its checkpoint
        assert stopped["status"] == "interrupted"
        (entry,) = stopped["interruptions"]
        assert entry["reason"] == "SIGTERM" and entry["epoch"] == 0 and entry["checkpoint"]
    else:
        assert stopped["status"] == "running"  # a kill -9 cannot record anything
    done = train(f"resume={tmp_path}")
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = record(tmp_path)
    assert resumed["status"] == "completed" and len(resumed["resumes"]) == 1
    assert resumed["metrics"] == uninterrupted
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best.ckpt",
        "last.ckpt",
    ]


def test_an_augmented_run_killed_mid_epoch_resumes_to_the_same_numbers(tmp_path):
    # the augmentation's draws are replayed from the seed on resume, like the batches'
    args = [*LONGER, "augmentation=light"]
    whole = train(*args, f"hydra.run.dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr[-2000:]
    proc = start(*args, f"hydra.run.dir={tmp_path / 'cut'}")
    wait_for(tmp_path / "cut" / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=120)
    done = train(f"resume={tmp_path / 'cut'}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert record(tmp_path / "cut")["metrics"] == record(tmp_path / "whole")["metrics"]


def test_a_requeued_slurm_job_resumes_in_its_own_folder(tmp_path, uninterrupted):
    # what SLURM does after a preemption: the same command again, SLURM_RESTART_COUNT set
    proc = start(*LONGER, f"hydra.run.dir={tmp_path}")
    wait_for(tmp_path / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=120)
    cmd = [sys.executable, str(ROOT / "train.py"), *LONGER, f"hydra.run.dir={tmp_path}"]
    env = {**os.environ, "SLURM_RESTART_COUNT": "1"}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = record(tmp_path)
    assert resumed["status"] == "completed" and len(resumed["resumes"]) == 1
    assert resumed["metrics"] == uninterrupted


def test_resume_refuses_other_overrides_and_completed_runs(tmp_path, uninterrupted):
    proc = start(*LONGER, f"hydra.run.dir={tmp_path}")
    wait_for(tmp_path / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    refused = train(f"resume={tmp_path}", "optimizer.lr=0.1")
    assert refused.returncode != 0 and "optimizer.lr=0.1 cannot change it" in refused.stderr
    assert train(f"resume={tmp_path}").returncode == 0
    again = train(f"resume={tmp_path}")
    assert again.returncode != 0 and "completed" in again.stderr


def test_a_sweep_with_a_killed_and_a_never_started_job_finishes_with_resume_auto(tmp_path):
    grid = ["-m", *LONGER, "seed=0,1,2,3", f"hydra.sweep.dir={tmp_path}"]
    proc = start(*grid)
    wait_for(tmp_path / "2" / "checkpoints" / "last.ckpt", proc)  # jobs 0 and 1 are done
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=120)
    completed, failed, missing = collect(tmp_path)
    assert [j.number for j in completed] == [0, 1]
    assert sorted(j.problem.split(" ")[0] for j in missing) == ["never", "status"]
    before = {n: (tmp_path / str(n) / "metrics.json").read_text() for n in (0, 1)}
    done = train(*grid, "resume=auto")
    assert done.returncode == 0, done.stderr[-3000:]
    completed, failed, missing = collect(tmp_path)
    assert [j.number for j in completed] == [0, 1, 2, 3] and not failed and not missing
    assert {n: (tmp_path / str(n) / "metrics.json").read_text() for n in (0, 1)} == before
    assert len(record(tmp_path / "2")["resumes"]) == 1 and "resumes" not in record(tmp_path / "3")
    again = train(*grid)  # without resume=auto the finished sweep's folder is refused
    assert again.returncode != 0 and "resume=auto" in again.stderr


def test_sigterm_to_a_sweep_exits_non_zero_and_the_report_shows_what_is_missing(tmp_path):
    proc = start("-m", *LONGER, "seed=0,1,2", f"hydra.sweep.dir={tmp_path}")
    wait_for(tmp_path / "0" / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    completed, failed, missing = collect(tmp_path)
    assert not completed and not failed and len(missing) == 3
    report = subprocess.run(
        [sys.executable, "-m", "siamese.report", str(tmp_path)], capture_output=True, text=True
    )
    assert report.returncode == 0 and "3 missing" in report.stdout


def test_the_readme_resume_commands_are_the_ones_tested():
    assert [line.split()[2].split("=")[0] for line in RESUME[:1]] == ["resume"]
    assert "resume=auto" in RESUME[1] and "-m" in RESUME[1]
