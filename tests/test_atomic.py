"""Atomic writes: a failure mid-write (an injected full disk) leaves the previous file and no temp."""

import errno
import json
import os
from pathlib import Path

import pytest
import torch

from siamese.core.atomic import (
    AtomicCheckpointIO,
    AtomicWriteError,
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    remove_temporaries,
)


def disk_full(monkeypatch, after_bytes: int = 3) -> None:
    """The next writes to a file fail like a full disk once a few bytes have gone out."""
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(bytes(data)[:after_bytes])  # a partial write reaches the disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: Full(real_fdopen(*a, **k)))


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_json(path, {"x": 1})
    atomic_write_json(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2}
    assert os.listdir(tmp_path) == ["a.json"]
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_written_file_gets_its_mode_from_the_umask_as_open_gives_it(tmp_path, umask):
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with open(tmp_path / "b.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "a.txt").stat().st_mode == (tmp_path / "b.txt").stat().st_mode


def test_a_full_disk_keeps_the_previous_file_and_names_path_and_cause(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    atomic_write_text(path, "old complete content\n")
    disk_full(monkeypatch)
    with pytest.raises(AtomicWriteError, match="No space left on device") as err:
        atomic_write_text(path, "new content that will not fit\n")
    assert str(path) in str(err.value)
    assert path.read_text() == "old complete content\n"
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_an_exception_raised_mid_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "x.bin"
    atomic_write_text(path, "before")

    def interrupted(f):
        f.write(b"half")
        raise KeyboardInterrupt  # a signal raised as an exception, mid-write

    from siamese.core.atomic import atomic_write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, interrupted)
    assert path.read_text() == "before" and os.listdir(tmp_path) == ["x.bin"]


def test_unserialisable_json_touches_no_file(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": object()}, default=None)
    assert json.loads(path.read_text()) == {"a": 1} and os.listdir(tmp_path) == ["m.json"]


def test_checkpoint_io_writes_in_the_target_folder_and_survives_a_full_disk(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"w": torch.ones(3), "global_step": 1}, path)
    made = []
    real_open = os.open

    def spy(file, flags, *args, **kwargs):
        if flags & os.O_EXCL:  # the temporary file
            made.append(Path(file).parent)
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    disk_full(monkeypatch, after_bytes=100)
    with pytest.raises(AtomicWriteError, match="No space left on device"):
        io.save_checkpoint({"w": torch.zeros(1000), "global_step": 2}, path)
    assert made == [path.parent]  # same folder: the rename never crosses filesystems
    loaded = io.load_checkpoint(path)
    assert loaded["global_step"] == 1 and torch.equal(loaded["w"], torch.ones(3))
    assert os.listdir(path.parent) == ["last.ckpt"]


def test_torch_save_and_leftovers_of_a_kill(tmp_path):
    path = tmp_path / "emb.pt"
    atomic_torch_save({"e": torch.arange(4)}, path)
    assert torch.equal(torch.load(path)["e"], torch.arange(4))
    stale = tmp_path / ".emb.pt.abc123.tmp"  # what a kill -9 between write and rename leaves
    stale.write_bytes(b"partial")
    assert remove_temporaries(tmp_path) == [stale]
    assert os.listdir(tmp_path) == ["emb.pt"]


KILLED_AT_RENAME = """
import os, signal, sys, torch
from siamese.core.atomic import AtomicCheckpointIO
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # dies between write and rename
AtomicCheckpointIO().save_checkpoint({"global_step": 2, "w": torch.zeros(10_000)}, sys.argv[1])
"""


@pytest.mark.slow
def test_a_kill_between_write_and_rename_leaves_a_loadable_last_ckpt(tmp_path):
    import subprocess
    import sys

    from tests.helpers import ROOT

    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"global_step": 1, "w": torch.ones(3)}, path)
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-c", KILLED_AT_RENAME, str(path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert AtomicCheckpointIO().load_checkpoint(path)["global_step"] == 1
    [stale] = [p for p in tmp_path.iterdir() if p != path]  # the full temp file, never renamed
    assert stale.name.startswith(".last.ckpt.") and stale.stat().st_size > 40_000
    remove_temporaries(tmp_path)
    assert os.listdir(tmp_path) == ["last.ckpt"]
