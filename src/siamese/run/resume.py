"""Continuing a run: `resume=DIR` takes back the run's own saved config (only the device and the
speed options may change); `resume=auto` in a sweep folder skips the jobs that completed."""

import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from siamese.config.overrides import override_key
from siamese.core.errors import ConfigValueError
from siamese.run.record import COMPLETED, read_summary

log = logging.getLogger(__name__)


def resumed_config(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """A resumed run's config: the one saved in its folder. Overrides other than resume= and the
    device choice (trainer=, trainer.*), the speed options (speed.*) and what the run prints
    (extras.*) would make it another run: refused, named."""
    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        raise ConfigValueError(f"resume={run_dir}: {saved_path} does not exist, nothing to resume")
    overrides = [o for o in HydraConfig.get().overrides.task if not _allowed_on_resume(o)]
    if overrides:
        raise ConfigValueError(
            f"resume={run_dir} continues that run with its own config: {' '.join(overrides)} "
            f"cannot change it (only the device may: trainer=, trainer.{{{','.join(DEVICE_KEYS)}}}, "
            "speed.*, extras.*); "
            "start a new run instead"
        )
    saved = OmegaConf.load(saved_path)
    given = [override_key(o) for o in HydraConfig.get().overrides.task]
    for key in DEVICE_KEYS:  # a device chosen on this command line; epochs, steps stay the run's
        if "trainer" in given or f"trainer.{key}" in given:
            saved.trainer[key] = cfg.trainer[key]
    if "speed" not in saved:  # a run saved before the speed options
        saved.speed = cfg.speed
    for key in cfg.speed:  # how fast, not what: this command line's choice
        if f"speed.{key}" in given:
            saved.speed[key] = cfg.speed[key]
    saved.extras = cfg.extras  # what it prints, not what it trains: this command line's
    saved.resume, saved.trust = cfg.resume, cfg.trust
    return saved


DEVICE_KEYS = ("accelerator", "devices", "strategy", "num_nodes", "precision")


def _allowed_on_resume(override: str) -> bool:
    key = override_key(override)
    device = key.removeprefix("trainer.") in DEVICE_KEYS
    how = key.startswith(("speed.", "extras."))
    return key in ("resume", "trust", "trainer") or device or how or key.startswith("hydra")


def completed_metric(run_dir: Path, monitor: str) -> float | None:
    """resume=auto in a sweep: a job that completed before is not run again; its stored metric
    goes back to the sweeper."""
    run = read_summary(run_dir)
    if run.status != COMPLETED:
        return None
    log.info("job already completed: %s (resume=auto skips it)", run_dir)
    return run.metrics[monitor]
