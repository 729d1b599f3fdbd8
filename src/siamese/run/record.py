"""metrics.json: what a run measured, how it ended, and what it ran with.

A run folder holds one run. A new run refuses a folder that already has a record; a resumed run
(resume=, a requeued SLURM job) reopens the record it left, keeps everything in it and appends to
its list of resumes. Every write is atomic: a failed write (full disk) leaves the previous
complete record and raises AtomicWriteError naming the path and the cause.

What reads a finished folder (the reports, resume=auto) reads it with read_summary.
"""

import json
import os
import platform
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siamese.core.atomic import atomic_write_json, remove_temporaries
from siamese.core.errors import UserError

METRICS_FILE = "metrics.json"
RUNNING, COMPLETED, FAILED, INTERRUPTED = "running", "completed", "failed", "interrupted"
MISSING = "missing"  # readers only: no record, an unreadable one, or a run that never ended
MESSAGE_CHARS = 300  # a traceback-sized message would swamp a report's list


class RunFolderError(UserError, FileExistsError):
    """The folder holds another run (or an unreadable record): nothing in it was touched."""


def versions() -> dict[str, str]:
    import hydra
    import pytorch_lightning
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pytorch_lightning": pytorch_lightning.__version__,
        "hydra": hydra.__version__,
    }


def _load(path: Path) -> dict[str, Any] | None:
    """The record at path, None when there is none; OSError or ValueError naming the cause."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    record = json.loads(text)
    if not isinstance(record, dict) or "status" not in record:
        raise ValueError("no status")
    return record


def read_record(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The folder's metrics.json, or None when it has none; RunFolderError when unreadable."""
    path = Path(run_dir) / METRICS_FILE
    try:
        return _load(path)
    except OSError as err:
        raise RunFolderError(f"cannot read {path}: {err.strerror or err}") from err
    except ValueError as err:
        raise RunFolderError(
            f"{path} is not a run record ({err}): move the folder away or choose another one"
        ) from err


def one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


@dataclass(frozen=True)
class RunSummary:
    """A run folder's record as the reports and resume=auto read it: what it ended as, what it
    measured, what it ran with."""

    status: str  # COMPLETED, FAILED, or MISSING (no record, an unreadable one, no ending)
    metrics: dict[str, float] = field(default_factory=dict)  # a completed run's numbers
    overrides: list[str] | None = None  # its command line's; None when the record lacks them
    seed: str | None = None  # the resolved seed, also when the config set it
    problem: str = ""  # why it failed or is missing, on one line
    times: dict[str, float] = field(default_factory=dict)  # started_at, total_s, ...


def read_summary(run_dir: str | os.PathLike) -> RunSummary:
    """Never raises for a bad record: a report lists the folder as missing, saying why."""
    try:
        record = _load(Path(run_dir) / METRICS_FILE)
    except (OSError, ValueError) as err:
        return RunSummary(MISSING, problem=one_line(f"unreadable {METRICS_FILE}: {err}"))
    if record is None:
        return RunSummary(MISSING, problem=f"no {METRICS_FILE}")
    status, problem = record["status"], ""
    if status == FAILED:
        error = record.get("error") or {}
        kind, message = error.get("type") or "error", one_line(error.get("message") or "")
        problem = f"{kind}: {message}" if message else kind
    elif status != COMPLETED:  # nobody runs it any more: killed before it could record an ending
        status, problem = MISSING, f"status {status!r} (killed mid-run?)"
    overrides = record.get("overrides")
    return RunSummary(
        status,
        _numbers(record.get("metrics")) if status == COMPLETED else {},
        [str(o) for o in overrides] if isinstance(overrides, list) else None,
        None if record.get("seed") is None else str(record["seed"]),
        problem,
        _numbers(record.get("times")),
    )


def _numbers(values: object) -> dict[str, float]:
    if not isinstance(values, dict):
        return {}
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def slurm_requeued() -> bool:
    """A SLURM job requeued after a preemption or time limit (SLURM sets SLURM_RESTART_COUNT)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def check_run_folder(run_dir: str | os.PathLike, resume: bool = False) -> dict[str, Any] | None:
    """Decides, before anything is written into run_dir, whether this run may use it.

    Returns None for a new run (no record there), the existing record when the run continues it
    (resume=True and the record is not completed, or a requeued SLURM job whose record is running
    or interrupted), and raises RunFolderError otherwise: a completed run is never reused.
    """
    path = Path(run_dir) / METRICS_FILE
    record = read_record(run_dir)
    if record is None:
        return None
    status = record.get("status")
    if status == COMPLETED:
        raise RunFolderError(
            f"{path} already exists and says completed: a run folder is never reused "
            "(choose another hydra.run.dir or name)"
        )
    if resume or (slurm_requeued() and status in (RUNNING, INTERRUPTED)):
        return record
    raise RunFolderError(
        f"{path} already exists (status {status}): a run folder is never reused; "
        f"to continue that run pass resume={Path(run_dir)}"
    )


class RunRecord:
    """Written when the run starts (status running) and whenever it ends: completed, failed or
    interrupted (a signal; the run can be resumed)."""

    def __init__(self, run_dir: Path, info: dict[str, Any], write: bool = True):
        """A new run. Refuses a folder with a record, but for a requeued SLURM job's own running
        one, which it reopens (use RunRecord.open for resume=)."""
        self.path = Path(run_dir) / METRICS_FILE
        self.enabled = write  # False on DDP ranks > 0, which share rank 0's folder
        self.start = time.time()
        previous = check_run_folder(run_dir) if write else None
        if previous is not None:
            self._reopen(previous, info, {})
            return
        self.resumed = False
        self.data: dict[str, Any] = {
            "status": RUNNING,
            "error": None,
            **info,
            "versions": versions(),
            "metrics": {},
            "times": {"started_at": self.start},
        }
        self.write()

    @classmethod
    def open(
        cls,
        run_dir: Path,
        info: dict[str, Any],
        resume: bool = False,
        write: bool = True,
        **position: Any,
    ) -> "RunRecord":
        """A new record, or (resume=True, a requeued SLURM job) the folder's record reopened:
        everything kept, a resume appended (time, previous status, `position` such as
        step=, epoch=, checkpoint=), status back to running. `record.resumed` says which."""
        if not write:
            return cls(run_dir, info, write=False)
        previous = check_run_folder(run_dir, resume)
        if previous is None:
            return cls(run_dir, info)
        self = cls.__new__(cls)
        self.path = Path(run_dir) / METRICS_FILE
        self.enabled = True
        self.start = time.time()
        self._reopen(previous, info, position)
        return self

    def _reopen(self, previous: dict[str, Any], info: dict[str, Any], position: dict) -> None:
        self.resumed = True
        self.data = previous
        resume = {"at": self.start, "previous_status": previous.get("status")}
        resume |= {k: v for k, v in position.items() if v is not None}
        if "environment" in info:  # where this part ran; the run's own info stays the first's
            resume["environment"] = info["environment"]
        self.data.setdefault("resumes", []).append(resume)
        self.data["status"] = RUNNING
        self.data["error"] = None  # a resume clears it; the old one stays in its interruption
        # a kill -9 mid-write may have left some, a checkpoint-sized one among them
        remove_temporaries(self.path.parent)
        remove_temporaries(self.path.parent / "checkpoints")
        self.write()

    def write(self) -> None:
        """Atomically; AtomicWriteError (naming the cause) leaves the previous record."""
        if not self.enabled:
            return
        atomic_write_json(self.path, self.data, sort_keys=False)

    def update(self, **values: Any) -> None:
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(self.data.get(key), dict):
                self.data[key].update(value)
            else:
                self.data[key] = value
        self.write()

    def _ended(self) -> dict[str, float]:
        # total_s: wall time since the first start, the time between a kill and its resume too
        end = time.time()
        return {"ended_at": end, "total_s": end - self.data["times"].get("started_at", self.start)}

    def complete(self) -> None:
        self.update(status=COMPLETED, times=self._ended())

    def fail(self, err: BaseException) -> None:
        self.update(status=FAILED, times=self._ended(), error=error_entry(err))

    def interrupt(
        self,
        reason: str,
        step: int | None = None,
        epoch: int | None = None,
        checkpoint: str | None = None,
    ) -> None:
        """Status interrupted (the run may be resumed), with what stopped it and where."""
        entry = {"at": time.time(), "reason": reason, "step": step, "epoch": epoch}
        entry["checkpoint"] = checkpoint
        self.data.setdefault("interruptions", []).append(entry)
        self.update(status=INTERRUPTED, times=self._ended())


def error_entry(err: BaseException) -> dict[str, str]:
    return {
        "type": type(err).__name__,
        "message": str(err),
        "traceback": "".join(traceback.format_exception(err)),
    }


def newest_checkpoint(ckpt_dir: str | os.PathLike) -> Path | None:
    """The checkpoint a resume starts from: the most recently written *.ckpt (last.ckpt on a
    tie), None when there is none. Temporary files of unfinished writes are not checkpoints."""
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return None
    found = [p for p in folder.glob("*.ckpt") if p.is_file() and not p.name.startswith(".")]
    if not found:
        return None
    return max(found, key=lambda p: (p.stat().st_mtime_ns, p.name == "last.ckpt"))
