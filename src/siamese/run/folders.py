"""Where a run writes: a folder of its own, checked before Hydra writes anything into it.

Hydra writes its record (`.hydra/`) into the output folder before the task starts, so a folder
that holds another run is refused here, from Hydra's callbacks (src/siamese/conf/train.yaml `hydra.callbacks`),
not from the task. `resume=` chooses an existing folder on purpose.
"""

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from siamese.config.resolvers import AUTO
from siamese.run.record import METRICS_FILE, slurm_requeued


class FolderInUse(SystemExit):
    """The output folder holds another run's record. A SystemExit: Hydra turns an Exception raised
    by a callback into a warning and goes on."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")


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
