"""SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 end a run resumably: a checkpoint, a record, a non-zero exit.

StopOnSignal installs its handlers for the whole job and is also a Lightning Callback. During a
fit, a signal is only noted; at the next training batch boundary the callback saves a checkpoint
with trainer.save_checkpoint (weights, optimizer, schedulers, loop progress, callback and
datamodule state), calls on_interrupt, calls the handler that was installed before it (submitit's
USR2 handler requeues the job), then raises Interrupted, a SystemExit whose code is 128 + signum.
Outside a fit (building, testing) it does the same without a checkpoint: in validate/test at the
next batch boundary, elsewhere at once. A second signal while one waits for its batch boundary
stops at once, without a checkpoint (the previous one is kept).

Lightning's own SIGTERM handling would raise SIGTERMException, a SystemExit without a code: exit
status 0. Lightning installs it at the start of every trainer run, wrapping the handler it finds;
the callback puts its own handler back at the first hook after that, so Lightning never sees the
signal. Single-process runs only: under DDP the checkpoint would need every rank.
"""

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)
IDLE, PENDING, FINISHING = "idle", "pending", "finishing"


class Interrupted(SystemExit):
    """A signal stopped the run; `code` (= exit_code) is 128 + signum, as a shell reports a kill."""

    def __init__(
        self,
        signum: int,
        step: int | None = None,
        epoch: int | None = None,
        checkpoint: str | None = None,
        note: str = "",
    ):
        self.exit_code = 128 + int(signum)
        super().__init__(self.exit_code)
        self.signum = int(signum)
        self.signal_name = signal.Signals(signum).name
        self.step, self.epoch, self.checkpoint, self.note = step, epoch, checkpoint, note

    def __str__(self) -> str:
        where = f" at global step {self.step}" if self.step is not None else ""
        saved = f"; checkpoint {self.checkpoint} written" if self.checkpoint else ""
        note = f"; {self.note}" if self.note else ""
        return f"{self.signal_name} received{where}{saved}{note}: exit {self.exit_code}"


def _chainable(handler: Any) -> bool:
    # SIG_DFL/SIG_IGN are ints; Python's SIGINT default would raise KeyboardInterrupt instead
    return callable(handler) and handler is not signal.default_int_handler


class StopOnSignal(Callback):
    """Signal handlers plus the callback that acts on them at a batch boundary.

    checkpoint_path: where the interrupted run's checkpoint goes (the run's last.ckpt, so a
        resume finds it; written through the trainer's CheckpointIO, atomic with
        siamese.core.atomic.AtomicCheckpointIO).
    on_interrupt: called with the Interrupted about to be raised (signal, step, epoch,
        checkpoint), before the previous handler: e.g. to mark the record interrupted.
    """

    def __init__(
        self,
        checkpoint_path: str | Path,
        on_interrupt: Callable[[Interrupted], Any] | None = None,
        signals: Iterable[int] = SIGNALS,
    ):
        self.checkpoint_path = Path(checkpoint_path)
        self.on_interrupt = on_interrupt
        self.signals = tuple(signals)
        self._previous: dict[int, Any] = {}
        self._state = IDLE
        self._signum: int | None = None
        self._trainer: pl.Trainer | None = None  # set while a trainer runs: defer to its batches

    # -- handlers ------------------------------------------------------------------------------

    def install(self) -> "StopOnSignal":
        """Installs the handlers (main thread only), remembering those they replace."""
        if threading.current_thread() is not threading.main_thread():
            log.warning("not the main thread: signals stop this run without a checkpoint")
            return self
        for signum in self.signals:
            current = signal.getsignal(signum)
            if current != self._handle:
                self._previous[signum] = current
                signal.signal(signum, self._handle)
        return self

    def uninstall(self) -> None:
        """Puts back the handlers found by install()."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous.items():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}

    def __enter__(self) -> "StopOnSignal":
        return self.install()

    def __exit__(self, *exc: Any) -> None:
        self.uninstall()

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self._state == FINISHING:
            log.warning("%s received while saving the interrupted run: ignored", name)
            return
        if self._state == PENDING:
            self._finish(signum, None, note="a second signal: stopped without a new checkpoint")
        if self._trainer is None:  # no batch boundary to wait for
            self._finish(signum, None)
        self._state, self._signum = PENDING, signum
        log.warning("%s received: the run stops at the next batch boundary", name)

    def _take_over(self, trainer: pl.Trainer) -> None:
        # Lightning has just wrapped our handler in its own (SIGTERMException, exit 0): undo that
        if threading.current_thread() is threading.main_thread():
            for signum in self._previous:
                if signal.getsignal(signum) != self._handle:
                    signal.signal(signum, self._handle)
        connector = getattr(trainer, "_signal_connector", None)
        if self._state == PENDING and connector is not None:  # it saw one before we took over
            connector.received_sigterm = False

    # -- acting --------------------------------------------------------------------------------

    def _finish(self, signum: int, trainer: pl.Trainer | None, note: str = "") -> None:
        self._state = FINISHING
        step = epoch = checkpoint = None
        notes = [note] if note else []
        if self._trainer is not None:
            step, epoch = self._trainer.global_step, self._trainer.current_epoch
        if trainer is not None:
            try:
                self._save(trainer)
                checkpoint = str(self.checkpoint_path)
            except OSError as err:  # e.g. a full disk: the previous checkpoint stays
                # (a DivergenceError found while saving propagates: the run failed)
                log.exception("the interrupted run's checkpoint could not be written")
                notes.append(f"checkpoint not written ({err})")
        err = Interrupted(signum, step, epoch, checkpoint, "; ".join(notes))
        if self.on_interrupt is not None:
            try:
                self.on_interrupt(err)
            except Exception as hook_err:  # still exit non-zero, with the signal's code
                log.exception("on_interrupt failed")
                err.note = "; ".join([*notes, f"on_interrupt failed: {hook_err}"])
        log.error("%s", err)
        previous = self._previous.get(signum)
        if _chainable(previous):
            try:
                previous(signum, None)  # submitit: requeue, then sys.exit(-1)
            except BaseException as chained:
                raise err from chained
        raise err

    def _save(self, trainer: pl.Trainer) -> None:
        path = self.checkpoint_path
        for cb in trainer.checkpoint_callbacks:
            # the saved ModelCheckpoint state then names this file as its last: no last-v1.ckpt
            if isinstance(cb, ModelCheckpoint) and cb.save_last and cb.dirpath is not None:
                if Path(cb.dirpath).resolve() == path.parent.resolve():
                    cb.last_model_path = str(path)
        trainer.save_checkpoint(path)

    # -- callback hooks ------------------------------------------------------------------------

    def setup(self, trainer, pl_module, stage: str) -> None:
        self._trainer = trainer

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._trainer = None
        if self._state == PENDING:  # arrived after the last batch: stop now, nothing to save
            self._finish(self._signum, None)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._trainer = None

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self._take_over(trainer)

    def on_train_start(self, trainer, pl_module) -> None:
        self._take_over(trainer)

    def on_validation_start(self, trainer, pl_module) -> None:
        self._take_over(trainer)

    def on_test_start(self, trainer, pl_module) -> None:
        self._take_over(trainer)

    def on_predict_start(self, trainer, pl_module) -> None:
        self._take_over(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._state == PENDING:
            self._finish(self._signum, trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._state == PENDING:  # during the last validation: its checkpoints are done
            self._finish(self._signum, trainer)

    def _eval_batch_end(self, trainer) -> None:
        # inside a fit, validation runs on to the next training batch (a checkpoint mid-way
        # through validation would resume with half its embeddings)
        if self._state == PENDING and trainer.state.fn != "fit":
            self._finish(self._signum, None)

    def on_validation_batch_end(self, trainer, pl_module, *args: Any, **kwargs: Any) -> None:
        self._eval_batch_end(trainer)

    def on_test_batch_end(self, trainer, pl_module, *args: Any, **kwargs: Any) -> None:
        self._eval_batch_end(trainer)

    def on_predict_batch_end(self, trainer, pl_module, *args: Any, **kwargs: Any) -> None:
        self._eval_batch_end(trainer)
