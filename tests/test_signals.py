"""StopOnSignal: a tiny Lightning fit in a subprocess gets a signal mid-epoch and exits non-zero with
a loadable last.ckpt and its record hook called; under a submitit-style USR2 handler it requeues.

Run as `python -m tests.test_signals DIR MODE`, this file is the child process itself."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from siamese.core.atomic import AtomicCheckpointIO
from siamese.run.signals import Interrupted, StopOnSignal
from tests.helpers import ROOT
from tests.test_guards import Tiny, loader

STEPS_PER_EPOCH = 16  # loader(): 64 samples, batches of 4


class Slow(Tiny):
    """Slow enough to be signalled mid-epoch; says when it is under way."""

    def __init__(self, started: Path):
        super().__init__()
        self.started = started

    def training_step(self, batch, batch_idx):
        if self.global_step == 3:
            self.started.touch()
        time.sleep(0.02)
        return super().training_step(batch, batch_idx)


def trainer_for(run_dir: Path, guard: StopOnSignal | None, **kwargs) -> pl.Trainer:
    checkpoints = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", save_last=True)
    return pl.Trainer(
        callbacks=[checkpoints] + ([guard] if guard else []),
        plugins=[AtomicCheckpointIO()],
        default_root_dir=run_dir,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        **{"max_epochs": 1000} | kwargs,
    )


def child(run_dir: Path, mode: str) -> None:
    if mode == "submitit":  # what submitit's JobEnvironment._handle_signals installs

        def checkpoint_and_try_requeue(signum, frame=None):
            (run_dir / "requeued").write_text(str(signum))
            sys.exit(-1)

        signal.signal(signal.SIGUSR2, checkpoint_and_try_requeue)
        signal.signal(signal.SIGTERM, lambda signum, frame=None: None)  # submitit's bypass

    def on_interrupt(err: Interrupted) -> None:
        entry = {"signal": err.signal_name, "step": err.step, "checkpoint": err.checkpoint}
        (run_dir / "interrupted.json").write_text(json.dumps(entry))

    guard = StopOnSignal(run_dir / "checkpoints" / "last.ckpt", on_interrupt)
    module = Slow(run_dir / "started")
    with guard:
        trainer_for(run_dir, guard).fit(module, loader(), loader(16))


def run_and_signal(tmp_path: Path, signum: int, mode: str = "plain") -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.test_signals", str(tmp_path), mode],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 120
    while not (tmp_path / "started").exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise AssertionError(f"child did not start training:\n{proc.communicate()[0]}")
        time.sleep(0.05)
    proc.send_signal(signum)
    proc.output = proc.communicate(timeout=120)[0]
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1])
def test_a_signal_mid_epoch_saves_last_and_exits_non_zero(tmp_path, signum):
    proc = run_and_signal(tmp_path, signum)
    assert proc.returncode == 128 + signum, proc.output
    record = json.loads((tmp_path / "interrupted.json").read_text())
    assert record["signal"] == signal.Signals(signum).name
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert record["checkpoint"] == str(last)
    ckpt = torch.load(last, weights_only=False)
    # mid-epoch: the step where it stopped, with the optimizer and loop state to go on from
    assert ckpt["global_step"] == record["step"] and 3 <= record["step"] < STEPS_PER_EPOCH
    assert ckpt["optimizer_states"] and "loops" in ckpt
    [mc_state] = [v for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint")]
    assert mc_state["last_model_path"] == str(last)  # a resume overwrites it, no last-v1.ckpt
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]

    # and the run goes on from there
    module = Tiny()
    trainer = trainer_for(tmp_path, None, max_epochs=1)
    trainer.fit(module, loader(), loader(16), ckpt_path=last)
    assert trainer.global_step == STEPS_PER_EPOCH
    assert not (tmp_path / "checkpoints" / "last-v1.ckpt").exists()


@pytest.mark.slow
def test_under_submitit_usr2_checkpoints_records_then_requeues(tmp_path):
    proc = run_and_signal(tmp_path, signal.SIGUSR2, mode="submitit")
    assert proc.returncode == 128 + signal.SIGUSR2, proc.output
    assert (tmp_path / "requeued").read_text() == str(int(signal.SIGUSR2))
    assert json.loads((tmp_path / "interrupted.json").read_text())["signal"] == "SIGUSR2"
    assert (
        torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] >= 3
    )


def test_a_signal_outside_a_fit_stops_at_once_and_handlers_are_restored():
    seen = []
    before = signal.getsignal(signal.SIGUSR1)
    guard = StopOnSignal("unused.ckpt", on_interrupt=seen.append, signals=[signal.SIGUSR1])
    with guard:
        with pytest.raises(Interrupted) as err:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(1)  # the handler runs at the next bytecode: never reached
    assert err.value.code == err.value.exit_code == 128 + signal.SIGUSR1
    assert seen == [err.value] and err.value.checkpoint is None
    assert "SIGUSR1 received" in str(err.value)
    assert signal.getsignal(signal.SIGUSR1) == before


class SignalsItself(Tiny):
    """Sends itself a signal from inside a validation or test batch (test-only switch)."""

    def __init__(self, signum: int, during: str):
        super().__init__()
        self.signum, self.during = signum, during

    def validation_step(self, batch, batch_idx):
        if self.during == "fit-validation" and self.trainer.state.fn == "fit" and batch_idx == 0:
            os.kill(os.getpid(), self.signum)
        return super().validation_step(batch, batch_idx)

    def test_step(self, batch, batch_idx):
        if batch_idx == 0:
            os.kill(os.getpid(), self.signum)
        return self.validation_step(batch, batch_idx)


def test_a_sigterm_during_validation_in_a_fit_waits_for_the_next_training_batch(tmp_path):
    # Lightning's own handler would end validation with SIGTERMException: exit status 0
    seen = []
    guard = StopOnSignal(tmp_path / "checkpoints" / "last.ckpt", seen.append, [signal.SIGTERM])
    module = SignalsItself(signal.SIGTERM, "fit-validation")
    with guard, pytest.raises(Interrupted) as err:
        trainer_for(tmp_path, guard, num_sanity_val_steps=0).fit(module, loader(), loader(16))
    assert err.value.code == 128 + signal.SIGTERM and seen == [err.value]
    # validation ran whole after epoch 0; the first batch of epoch 1 then stopped the run
    assert err.value.step == STEPS_PER_EPOCH + 1
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == STEPS_PER_EPOCH + 1


def test_a_signal_during_the_last_validation_saves_the_finished_fit(tmp_path):
    seen = []
    last = tmp_path / "checkpoints" / "last.ckpt"
    guard = StopOnSignal(last, seen.append, [signal.SIGTERM])
    module = SignalsItself(signal.SIGTERM, "fit-validation")
    with guard, pytest.raises(Interrupted) as err:
        trainer_for(tmp_path, guard, max_epochs=1, num_sanity_val_steps=0).fit(
            module, loader(), loader(16)
        )
    assert err.value.step == STEPS_PER_EPOCH and err.value.checkpoint == str(last)
    # resuming finds the fit done and goes straight on (to validate/test in a real run)
    trainer = trainer_for(tmp_path, None, max_epochs=1)
    trainer.fit(Tiny(), loader(), loader(16), ckpt_path=last)
    assert trainer.global_step == STEPS_PER_EPOCH


def test_a_signal_during_test_stops_without_a_checkpoint(tmp_path):
    seen = []
    guard = StopOnSignal(tmp_path / "last.ckpt", seen.append, [signal.SIGUSR1])
    module = SignalsItself(signal.SIGUSR1, "test")
    with guard, pytest.raises(Interrupted) as err:
        trainer_for(tmp_path, guard).test(module, loader(16))
    assert err.value.code == 128 + signal.SIGUSR1 and err.value.checkpoint is None
    assert seen == [err.value] and not (tmp_path / "last.ckpt").exists()


class SignalsAtStep(Tiny):
    """Sends itself a signal in training step `at`, after calling `before()` (test-only)."""

    def __init__(self, signum: int, at: int, before=lambda: None):
        super().__init__()
        self.signum, self.at, self.before = signum, at, before

    def training_step(self, batch, batch_idx):
        if self.global_step == self.at:
            self.before()
            os.kill(os.getpid(), self.signum)
        return super().training_step(batch, batch_idx)


def test_a_full_disk_at_the_signal_keeps_the_previous_last_and_still_exits_non_zero(
    tmp_path, monkeypatch
):
    from tests.test_atomic import disk_full

    seen = []
    last = tmp_path / "checkpoints" / "last.ckpt"
    guard = StopOnSignal(last, seen.append, [signal.SIGUSR1])
    at = STEPS_PER_EPOCH + 4  # after epoch 0's checkpoints
    module = SignalsAtStep(signal.SIGUSR1, at, before=lambda: disk_full(monkeypatch))
    with guard, pytest.raises(Interrupted) as err:
        trainer_for(tmp_path, guard, num_sanity_val_steps=0).fit(module, loader(), loader(16))
    monkeypatch.undo()
    assert err.value.code == 128 + signal.SIGUSR1 and seen == [err.value]
    assert err.value.checkpoint is None and "No space left on device" in err.value.note
    assert err.value.step == at + 1
    assert torch.load(last, weights_only=False)["global_step"] == STEPS_PER_EPOCH
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.ckpt", "last.ckpt"]


if __name__ == "__main__":
    child(Path(sys.argv[1]), sys.argv[2])
