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
from pytorch_lightning.utilities import rank_zero_only

from siamese.build import build, build_scorer, make_trainer
from siamese.checks import ConfigValueError, check_config
from siamese.config import register
from siamese.record import RunRecord
from siamese.scoring import score_split

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
    """One run in Hydra's output folder; returns the monitored metric (for sweepers)."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    # DDP starts ranks > 0 by re-running this command into the same folder: rank 0 alone writes
    main_process = rank_zero_only.rank == 0
    record = RunRecord(run_dir, run_info(cfg, run_dir), write=main_process)
    try:
        check_config(cfg)
        refuse_ddp_in_sweep(cfg)
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        datamodule, module = build(cfg)
        if main_process:  # after build: it fills the keys the data decides (loss.num_classes)
            OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        untrained, _ = score_split(
            module,
            datamodule.splits["test"],
            datamodule.pairs["test"],
            build_scorer(cfg),
            batch_size=datamodule.eval_batch_size,
        )
        trainer = make_trainer(cfg, run_dir, datamodule.pairs)
        start = time.time()
        trainer.fit(module, datamodule)
        fit_s = time.time() - start
        ckpt = cfg.evaluation.test_on
        (val,) = trainer.validate(module, datamodule, ckpt_path=ckpt, verbose=False)
        (test,) = trainer.test(module, datamodule, ckpt_path=ckpt, verbose=False)
        metrics = {k: float(v) for k, v in (val | test).items()}
        metrics["test/p_at_1_untrained"] = untrained["p_at_1"]
        images = trainer.global_step * datamodule.batch_size * datamodule.tuple_size
        record.update(
            metrics=metrics,
            threshold=metrics["test/threshold"],  # τ of the tested checkpoint, chosen on val
            checkpoint=ckpt,
            times={"fit_s": fit_s},  # training with its validation epochs and checkpoints
            throughput={"fit_images_per_s": images * trainer.world_size / fit_s},
        )
        record.complete()
        if trainer.logger:  # TensorBoard's hparams tab: each run's choices beside its results
            choices = record.data["choices"] | {"seed": cfg.seed, "name": cfg.name}
            final = {k: v for k, v in metrics.items() if k.startswith("test/")}
            trainer.logger.log_hyperparams(choices, metrics=final)
    except BaseException as err:
        record.fail(err)
        raise
    log.info(
        "test P@1 %.3f (untrained encoder %.3f), AUC %.3f, τ %.3f, fit in %.0f s; %s",
        metrics["test/p_at_1"],
        metrics["test/p_at_1_untrained"],
        metrics["test/auc"],
        metrics["test/threshold"],
        fit_s,
        run_dir,
    )
    return metrics[cfg.evaluation.monitor]
