"""Sweeps as users run them: the real `-m` command, failure isolation, the Ray GPU pool."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY

pytestmark = pytest.mark.slow


def sweep(tmp_path: Path, *overrides: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python train.py [-m] ...`; the named sweeps set multirun mode themselves."""
    flags = ["-m"] if "-m" in overrides else []
    overrides = tuple(o for o in overrides if o != "-m")
    cmd = [sys.executable, "train.py", *flags, *TINY, f"hydra.sweep.dir={tmp_path}", *overrides]
    return subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def records(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))]


def test_the_sprn_vs_sdrn_grid_runs_every_cell(tmp_path):
    proc = sweep(tmp_path, "+sweep=sprn_vs_sdrn")
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = records(tmp_path)
    assert len(done) == 24 and all(r["status"] == "completed" for r in done)
    cells = {
        (
            r["choices"]["experiment"],
            r["choices"]["optimizer"],
            r["choices"]["normalization"],
            r["seed"],
        )
        for r in done
    }
    assert len(cells) == 24
    assert {r["choices"]["loss"] for r in done} == {"triplet", "sdrn"}


def test_a_job_that_raises_does_not_stop_the_others(tmp_path):
    # the first job's batch size is no multiple of the P×K sampler's 4: it fails at its first batch
    proc = sweep(tmp_path, "-m", "loss=triplet_batch_hard", "data.batch_size=6,8,12")
    assert proc.returncode != 0  # the sweep's exit code says that something failed
    status = [r["status"] for r in records(tmp_path)]
    assert status == ["failed", "completed", "completed"]
    assert "data.batch_size=6" in records(tmp_path)[0]["error"]["message"]


def test_ddp_under_multirun_is_refused_with_what_to_use_instead(tmp_path):
    proc = sweep(tmp_path, "-m", "trainer.strategy=ddp", "trainer.accelerator=cpu", "seed=0,1")
    assert proc.returncode != 0
    assert "trainer.strategy=ddp trainer.devices=1 cannot run under -m" in proc.stderr
    assert "one device per job" in proc.stderr


def test_several_devices_under_multirun_are_refused_too(tmp_path):
    proc = sweep(tmp_path, "-m", "trainer.devices=2", "trainer.accelerator=cpu", "seed=0,1")
    assert proc.returncode != 0
    assert "trainer.devices=2 cannot run under -m" in proc.stderr


@pytest.fixture
def ray_temp():
    # Ray's socket paths must stay under 108 bytes: pytest's tmp_path is too deep
    path = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_ray_pool_spreads_jobs_over_both_gpus_one_at_a_time_each(tmp_path, ray_temp):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    # Ray is told of 2 GPUs that do not exist; each job asks for one and runs on the CPU
    proc = sweep(
        tmp_path / "sweep",
        "-m",
        "hydra/launcher=ray",
        "seed=0,1,2,3",
        "hydra.launcher.ray.init.num_gpus=2",
        "hydra.launcher.ray.init.num_cpus=2",
        "hydra.launcher.ray.remote.num_gpus=1",
        f"+hydra.launcher.ray.init._temp_dir={ray_temp}",
        env={"RAY_AUTH_MODE": "disabled"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = records(tmp_path / "sweep")
    assert len(done) == 4 and all(r["status"] == "completed" for r in done)
    devices = [r["environment"]["cuda_visible_devices"] for r in done]
    assert sorted(set(devices)) == ["0", "1"]
    assert len({r["environment"]["pid"] for r in done}) == 4  # a fresh process per job
    for device in ("0", "1"):
        spans = sorted(
            (r["times"]["started_at"], r["times"]["ended_at"])
            for r, d in zip(done, devices, strict=True)
            if d == device
        )
        assert all(
            end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False)
        )
