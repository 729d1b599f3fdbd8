"""metrics.json: what a run measured, how it ended, and what it ran with."""

import json
import os
import platform
import time
import traceback
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.json"


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


def _requeued(path: Path) -> bool:
    """A SLURM job requeued after preemption or timeout reruns in its own folder, where it left
    status running: that folder is its own, not another run's."""
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
    return restarts > 0 and json.loads(path.read_text()).get("status") == "running"


class RunRecord:
    """Written when the run starts (status running) and again when it ends, completed or failed."""

    def __init__(self, run_dir: Path, info: dict[str, Any], write: bool = True):
        self.path = Path(run_dir) / METRICS_FILE
        self.enabled = write  # False on DDP ranks > 0, which share rank 0's folder
        if write and self.path.exists() and not _requeued(self.path):
            raise FileExistsError(f"{self.path} already exists: a run folder is never reused")
        self.start = time.time()
        self.data: dict[str, Any] = {
            "status": "running",
            "error": None,
            **info,
            "versions": versions(),
            "metrics": {},
            "times": {"started_at": self.start},
        }
        self.write()

    def write(self) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=False, default=float) + "\n")
        tmp.replace(self.path)  # atomic: a reader never sees half a file

    def update(self, **values: Any) -> None:
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(self.data.get(key), dict):
                self.data[key].update(value)
            else:
                self.data[key] = value
        self.write()

    def _ended(self) -> dict[str, float]:
        end = time.time()
        return {"ended_at": end, "total_s": end - self.start}

    def complete(self) -> None:
        self.update(status="completed", times=self._ended())

    def fail(self, err: BaseException) -> None:
        self.update(
            status="failed",
            times=self._ended(),
            error={
                "type": type(err).__name__,
                "message": str(err),
                "traceback": "".join(traceback.format_exception(err)),
            },
        )
