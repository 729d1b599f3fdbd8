"""A checkpoint from someone else cannot run code: every command that reads one (resume,
evaluate, verify, search, export) loads it with weights_only=True, refuses a file holding a
pickled payload without running it and names what it holds; trust=true loads a file that is
legitimate but holds more than plain data and tensors; what training stores needs no trust."""

import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from siamese import evaluate, export, search, verify
from siamese.run.build import build_module
from siamese.run.checkpoint import (
    CONFIG_KEY,
    CheckpointFiles,
    ConfigInCheckpoint,
    UntrustedCheckpointError,
    read_checkpoint,
)
from tests.helpers import ROOT, TINY

SYSTEM = f"{os.system.__module__}.system"  # how the pickle names os.system: posix.system


class Payload:
    """Unpickled, it runs a shell command that creates `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def saved(make_config, path: Path, **extra) -> Path:
    """A checkpoint as training stores it (weights and config), plus `extra` entries."""
    cfg = make_config("backbone=mlp")
    module = build_module(cfg, torch.tensor([0.5] * 3), torch.tensor([0.25] * 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"state_dict": module.state_dict(), CONFIG_KEY: OmegaConf.to_container(cfg)}
    torch.save(state | extra, path)
    return path


@pytest.fixture
def evil(make_config, tmp_path) -> tuple[Path, Path]:
    """(a checkpoint carrying a payload, the marker file its unpickling would create)."""
    marker = tmp_path / "marker"
    ckpt = saved(make_config, tmp_path / "run" / "checkpoints" / "best.ckpt", x=Payload(marker))
    torch.load(ckpt, weights_only=False)  # the payload is real: loaded unsafely, it runs
    assert marker.is_file()
    marker.unlink()
    return ckpt, marker


def test_a_payload_is_refused_naming_it_and_never_runs(evil):
    ckpt, marker = evil
    with pytest.raises(UntrustedCheckpointError) as refused:
        read_checkpoint(ckpt)
    message = str(refused.value)
    assert SYSTEM in message and str(ckpt) in message
    assert "trust=true" in message and "ONNX" in message
    with pytest.raises(UntrustedCheckpointError, match=SYSTEM):  # resume, ckpt_path="best"
        CheckpointFiles().load_checkpoint(ckpt)
    assert not marker.exists()


def images(folder: Path) -> list[str]:
    paths = []
    for i, value in enumerate((0, 255)):
        paths.append(str(folder / f"{i}.png"))
        Image.new("RGB", (16, 16), (value, 128, 64)).save(paths[-1])
    return paths


@pytest.mark.parametrize(
    ("command", "args"),
    [
        (verify, ["{ckpt}", "{a}", "{b}"]),
        (verify, ["model={ckpt_file}", "{a}", "{b}"]),
        (search, ["{ckpt}", "gallery={folder}", "query={a}"]),
        (evaluate, ["{ckpt}"]),
        (export, ["{ckpt}", "format=onnx"]),
    ],
)
def test_every_command_refuses_the_payload(evil, tmp_path, monkeypatch, capsys, command, args):
    ckpt, marker = evil
    a, b = images(tmp_path)
    names = {"ckpt": f"ckpt_path={ckpt}", "ckpt_file": ckpt, "a": a, "b": b, "folder": tmp_path}
    monkeypatch.setattr(sys, "argv", ["x", *(arg.format(**names) for arg in args)])
    with pytest.raises(SystemExit) as exited:
        command.main()
    assert SYSTEM in str(exited.value.code) and "trust=true" in str(exited.value.code)
    assert not marker.exists() and not (ckpt.parent.parent / "export").exists()
    assert not list(ckpt.parent.glob("metrics*.json"))


def test_trust_true_loads_a_legitimate_but_unusual_file(make_config, tmp_path, monkeypatch, capsys):
    ckpt = saved(make_config, tmp_path / "odd.ckpt", folder=pathlib.PurePosixPath("/data"))
    a, b = images(tmp_path)
    with pytest.raises(UntrustedCheckpointError, match="pathlib.PurePosixPath"):
        read_checkpoint(ckpt)
    assert read_checkpoint(ckpt, trust=True)["folder"] == pathlib.PurePosixPath("/data")
    monkeypatch.setattr(sys, "argv", ["x", f"ckpt_path={ckpt}", "trust=true", a, b])
    verify.main()
    assert capsys.readouterr().out.startswith("distance ")
    monkeypatch.setattr(sys, "argv", ["x", f"ckpt_path={ckpt}", "trust=yes", a, b])
    with pytest.raises(SystemExit, match="trust must be true or false, got 'yes'"):
        verify.main()


def test_the_stored_config_is_plain_data(make_config, tmp_path):
    cfg = make_config()
    OmegaConf.set_struct(cfg, False)
    cfg.where = pathlib.Path(tmp_path)  # an untyped node keeps a Path
    checkpoint = {}
    ConfigInCheckpoint(cfg, ["a", "b"]).on_save_checkpoint(None, None, checkpoint)
    assert checkpoint[CONFIG_KEY]["where"] == str(tmp_path)
    torch.save(checkpoint, tmp_path / "c.ckpt")
    assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "c.ckpt") == []


def train(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "train.py"), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def as_interrupted(run_dir: Path, last: Path) -> None:
    """The run folder as a killed run leaves it, its last.ckpt replaced by `last`."""
    record = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps(record | {"status": "interrupted"}))
    shutil.copy(last, run_dir / "checkpoints" / "last.ckpt")


@pytest.mark.slow  # three runs of train.py: ~1 min
def test_training_stores_plain_data_and_resume_refuses_a_payload(tmp_path):
    run_dir = tmp_path / "run"
    assert train(*TINY, f"hydra.run.dir={run_dir}").returncode == 0
    for name in ("best.ckpt", "last.ckpt"):  # what Lightning and the project store: no class
        path = run_dir / "checkpoints" / name
        assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    real = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    marker = tmp_path / "marker"
    torch.save(real | {"x": Payload(marker)}, tmp_path / "evil.ckpt")
    as_interrupted(run_dir, tmp_path / "evil.ckpt")
    refused = train(f"resume={run_dir}")
    assert refused.returncode != 0 and not marker.exists()
    assert f"holds {SYSTEM}" in refused.stderr and "trust=true" in refused.stderr

    torch.save(real | {"x": pathlib.PurePosixPath("/data")}, tmp_path / "odd.ckpt")
    as_interrupted(run_dir, tmp_path / "odd.ckpt")
    assert "holds pathlib.PurePosixPath" in train(f"resume={run_dir}").stderr
    trusted = train(f"resume={run_dir}", "trust=true")
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
