"""Train one run from a composed config: build everything, fit, test, write metrics.json."""

import logging
import os
import socket
import time
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LambdaCallback
from pytorch_lightning.utilities import rank_zero_only

from siamese.config.checks import check_config
from siamese.config.resolvers import AUTO
from siamese.config.schemas import register
from siamese.core.atomic import atomic_write_text
from siamese.core.errors import ConfigValueError, UserError
from siamese.metrics.scoring import score_split
from siamese.run.build import build, build_scorer
from siamese.run.loggers import close_loggers, log_final, logger_places
from siamese.run.output import quiet, reported, summary
from siamese.run.record import RunRecord, newest_checkpoint, slurm_requeued
from siamese.run.resume import completed_metric, resumed_config
from siamese.run.signals import Interrupted, StopOnSignal
from siamese.run.trainer import make_trainer, tested_checkpoint

register()
log = logging.getLogger(__name__)


def refuse_ddp_in_sweep(cfg: DictConfig) -> None:
    t = cfg.trainer
    several = (
        str(t.strategy).startswith("ddp") or str(t.devices) not in ("1", "auto") or t.num_nodes > 1
    )
    if HydraConfig.get().mode == RunMode.MULTIRUN and several:
        raise ConfigValueError(
            f"trainer.strategy={t.strategy} trainer.devices={t.devices} cannot run under -m: "
            "Lightning starts each DDP process by re-running the command line, which would re-run "
            "the whole sweep. Sweep with one device per job (trainer=gpu, hydra/launcher=ray for a "
            "GPU pool), or run a multi-GPU job on its own without -m."
        )


def run_info(cfg: DictConfig, run_dir: Path) -> dict:
    hc = HydraConfig.get()
    choices = {
        k: v
        for k, v in hc.runtime.choices.items()
        if not k.startswith(("hydra/", "schema")) and v is not None
    }
    return {
        "name": cfg.name,
        "seed": cfg.seed,
        "choices": choices,
        "overrides": list(hc.overrides.task),
        "run_dir": str(run_dir),
        # where the job ran: a sweep launcher gives each job its own devices
        "environment": {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        },
    }


def train(cfg: DictConfig) -> float:
    """One run in Hydra's output folder; returns the monitored metric (for sweepers). Third-party
    noise is held back (`extras`); an error in what the user gave ends the job with its message
    alone (after metrics.json recorded it), any other with its traceback."""
    with quiet(cfg.extras.ignore_warnings):
        try:
            return run(cfg)
        except UserError as err:
            # a sweep goes on with its other jobs: name this one's error where it ran
            if HydraConfig.get().mode == RunMode.MULTIRUN:
                log.error("%s", err)
            raise reported(err, cfg.extras.traceback)  # noqa: B904 (the error, or its message)


def run(cfg: DictConfig) -> float:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if cfg.resume == AUTO:
        done = completed_metric(run_dir, cfg.evaluation.monitor)
        if done is not None:
            return done
    # a requeued SLURM job re-runs in its own folder: it resumes like resume=auto
    resuming = cfg.resume is not None or slurm_requeued()
    if cfg.resume not in (None, AUTO):
        cfg = resumed_config(cfg, run_dir)
    # DDP starts ranks > 0 by re-running this command into the same folder: rank 0 alone writes
    main_process = rank_zero_only.rank == 0
    record = RunRecord.open(run_dir, run_info(cfg, run_dir), resume=resuming, write=main_process)
    # DDP ranks > 0 write no record but resume from the same checkpoint as rank 0
    resumed = record.resumed or (resuming and not main_process)
    checkpoint = newest_checkpoint(run_dir / "checkpoints") if resumed else None
    stop = StopOnSignal(
        run_dir / "checkpoints" / "last.ckpt", on_interrupt=record_interruption(record)
    )
    if main_process and single_process(cfg):
        stop.install()
    try:
        metrics, fit_s, places = fit_and_test(cfg, run_dir, record, [stop], checkpoint)
        record.complete()
    except Interrupted:
        raise  # recorded as interrupted by the signal's callback: resumable, not failed
    except BaseException as err:
        record.fail(err)
        raise
    finally:
        stop.uninstall()
    if main_process:
        tested = cfg.evaluation.test_on
        log.info("run completed\n%s", summary(metrics, fit_s, tested, run_dir, places))
    return metrics[cfg.evaluation.monitor]


def fit_and_test(
    cfg: DictConfig,
    run_dir: Path,
    record: RunRecord,
    callbacks: list,
    checkpoint: Path | None,
) -> tuple[dict[str, float], float, dict[str, str]]:
    """Checks, builds, fits (from `checkpoint` if resumed), scores val and test with the
    checkpoint `evaluation.test_on` names, and records it all, in metrics.json and every logger;
    returns (metrics, fit seconds, where the loggers wrote)."""
    check_config(cfg)
    refuse_ddp_in_sweep(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, module = build(cfg)
    if record.enabled:  # after build: it fills the keys the data decides (loss.num_classes)
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    first = []  # the step this fit starts from: a resumed one trains the rest only
    at_start = LambdaCallback(on_train_start=lambda t, m: first.append(t.global_step))
    trainer = make_trainer(cfg, run_dir, datamodule, callbacks=[*callbacks, at_start])
    failed = True
    try:
        metrics, fit_s = fit_and_score(cfg, trainer, module, datamodule, checkpoint)
        steps = trainer.global_step - (first[0] if first else 0)
        images = steps * trainer.accumulate_grad_batches * datamodule.batch_size
        images *= datamodule.tuple_size
        record.update(
            metrics=metrics,
            threshold=metrics["test/threshold"],  # τ of the tested checkpoint, chosen on val
            checkpoint=cfg.evaluation.test_on,
            # training with its validation epochs and checkpoints; this part's alone if resumed
            times={"fit_s": fit_s},
            throughput={"fit_images_per_s": images * trainer.world_size / fit_s},
        )
        choices = record.data["choices"] | {"seed": cfg.seed, "name": cfg.name}
        final = {k: v for k, v in metrics.items() if k.startswith("test/")}
        log_final(trainer.loggers, choices, final, set(trainer.logged_metrics), trainer.global_step)
        failed = False
    finally:
        close_loggers(trainer.loggers, failed)
    return metrics, fit_s, logger_places(trainer.loggers)


def fit_and_score(
    cfg: DictConfig, trainer: pl.Trainer, module, datamodule, checkpoint: Path | None
) -> tuple[dict[str, float], float]:
    """The untrained encoder's test P@1, the fit (from `checkpoint` if resumed), then val and
    test scored with the tested checkpoint: (metrics, fit seconds)."""
    untrained, _ = score_split(
        module,
        datamodule.splits["test"],
        datamodule.pairs["test"],
        build_scorer(cfg),
        batch_size=datamodule.eval_batch_size,
    )
    start = time.time()
    trainer.fit(module, datamodule, ckpt_path=checkpoint)
    fit_s = time.time() - start
    ckpt = tested_checkpoint(trainer, cfg.evaluation.test_on)
    (val,) = trainer.validate(module, datamodule, ckpt_path=ckpt, verbose=False)
    (test,) = trainer.test(module, datamodule, ckpt_path=ckpt, verbose=False)
    metrics = {k: float(v) for k, v in (val | test).items()}
    metrics["test/p_at_1_untrained"] = untrained["p_at_1"]
    return metrics, fit_s


def single_process(cfg: DictConfig) -> bool:
    """Signals checkpoint a single-process run; a DDP run's checkpoint would need every rank."""
    t = cfg.trainer
    return not str(t.strategy).startswith("ddp") and str(t.devices) in ("1", "auto")


def record_interruption(record: RunRecord):
    def on_interrupt(err: Interrupted) -> None:
        record.interrupt(err.signal_name, err.step, err.epoch, err.checkpoint)

    return on_interrupt
