"""Where a run writes: a folder of its own, checked before Hydra writes anything into it.

Hydra writes its record (`.hydra/`) into the output folder before the task starts, so a folder
that holds another run is refused here, from Hydra's callbacks (conf/train.yaml `hydra.callbacks`),
not from the task. `resume=` chooses an existing folder on purpose.
"""

import os
import re
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from siamese.record import METRICS_FILE, slurm_requeued

AUTO = "auto"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=,+-]*$")


class FolderInUse(SystemExit):
    """The output folder holds another run's record. A SystemExit: Hydra turns an Exception raised
    by a callback into a warning and goes on."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")


def run_name(name: Any) -> str:
    """`name` as a folder name: letters, digits and . _ = , + - only, so that no name can reach
    outside outputs/ (`a/../../x`) or hide a folder (`.x`)."""
    text = str(name)
    if not _NAME.match(text) or ".." in text:
        raise ValueError(
            f"name={text!r} cannot be part of a folder name: use letters, digits and . _ = , + -"
        )
    return text


def run_dir(resume: Any, default: str) -> str:
    """The run's folder: the one `resume=` names, else a new one (`default`)."""
    if resume in (None, "", AUTO):
        return default
    return str(resume)


def hydra_subdir(resume: Any) -> str:
    """Where Hydra keeps its record of the command: a resumed run's goes beside the original's,
    which stays as it was."""
    if resume in (None, ""):
        return ".hydra"
    return f".hydra/resumed-{time.strftime('%Y-%m-%d_%H-%M-%S')}"


def register_resolvers() -> None:
    for name, fn in (("run_name", run_name), ("run_dir", run_dir), ("hydra_subdir", hydra_subdir)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def holds_a_run(folder: Path) -> bool:
    return (Path(folder) / METRICS_FILE).exists()


def ddp_child() -> bool:
    return any(int(os.environ.get(k, "0") or 0) > 0 for k in ("LOCAL_RANK", "NODE_RANK", "RANK"))


class RefuseUsedFolders(Callback):
    """A single run refuses a folder that holds a run unless it is resumed (resume=DIR); a sweep
    refuses a sweep folder whose jobs hold runs unless it is re-run with resume=auto."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if ddp_child():  # Lightning starts DDP ranks > 0 by re-running the command: rank 0's folder
            return
        folder = Path(config.hydra.run.dir)
        resume = config.get("resume")
        # a requeued SLURM job re-runs its own command in its own folder: train() resumes it
        if resume in (None, "") and holds_a_run(folder) and not slurm_requeued():
            raise FolderInUse(
                f"{folder / METRICS_FILE} already exists: a run folder is never reused "
                f"(to continue that run: resume={folder})"
            )
        if resume == AUTO:
            raise FolderInUse(
                "resume=auto is for a sweep (-m) folder; resume a run with resume=DIR"
            )
        if resume not in (None, "") and not holds_a_run(folder):
            raise FolderInUse(f"resume={resume}: {folder / METRICS_FILE} does not exist")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.sweep.dir)
        resume = config.get("resume")
        if resume not in (None, "", AUTO):
            raise FolderInUse(
                f"resume={resume} resumes one run; re-run a sweep in its folder with resume=auto"
            )
        used = sorted(p.parent.name for p in folder.glob(f"*/{METRICS_FILE}"))
        if used and resume != AUTO:
            raise FolderInUse(
                f"sweep folder {folder} already holds runs (jobs {', '.join(used[:5])}"
                f"{', ...' if len(used) > 5 else ''}): a folder is never reused; to finish that "
                f"sweep add resume=auto (completed jobs are skipped, interrupted ones resumed)"
            )
