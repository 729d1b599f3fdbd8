"""Train one run from a composed config: build everything, fit, test, write metrics.json."""

import logging
import os
import socket
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from siamese.checkpoint import CONFIG_KEY
from siamese.config import ConfigValueError, register, validate
from siamese.data import SiameseDataModule
from siamese.evaluation import Evaluation, embed_split
from siamese.metrics import retrieval_metrics
from siamese.models.encoder import Encoder
from siamese.modules import SiameseModule
from siamese.record import RunRecord

register()
log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[SiameseDataModule, SiameseModule]:
    """The data module (set up) and the LightningModule that a config describes."""
    # each DDP rank draws its own batches (rank 0 of a single-device run: seed itself)
    seed = cfg.seed + rank_zero_only.rank
    datamodule = instantiate(cfg.data, sampler=instantiate(cfg.sampler), seed=seed)
    datamodule.setup("fit")
    # the sdrn discriminator's classes: null means the training split's count, written back so
    # that the saved config and every checkpoint rebuild the same model
    if "num_classes" in cfg.loss:
        if cfg.loss.num_classes is None:
            cfg.loss.num_classes = datamodule.num_train_classes
        if cfg.loss.num_classes < datamodule.num_train_classes:
            raise ConfigValueError(
                f"loss.num_classes={cfg.loss.num_classes} but the training split has "
                f"{datamodule.num_train_classes} classes: leave it null to take the split's count"
            )
    module = build_module(cfg, *datamodule.pixel_stats())
    if datamodule.tuple_size != module.loss.tuple_size:
        raise ConfigValueError(
            f"sampler draws tuples of {datamodule.tuple_size} but loss "
            f"{type(module.loss).__name__} takes tuples of {module.loss.tuple_size}: "
            "choose loss= alone, it brings its sampler"
        )
    return datamodule, module


def build_module(
    cfg: DictConfig, pixel_mean: torch.Tensor, pixel_std: torch.Tensor
) -> SiameseModule:
    encoder = Encoder(instantiate(cfg.backbone), cfg.embedding.dim, cfg.embedding.l2_normalize)
    evaluation = Evaluation(
        distance=cfg.embedding.distance,
        recall_ks=tuple(cfg.evaluation.recall_ks),
        one_shot_ways=tuple(cfg.evaluation.one_shot_ways),
        one_shot_trials=cfg.evaluation.one_shot_trials,
        chunk_size=cfg.evaluation.chunk_size,
        seed=cfg.data.split_seed,
    )
    # built as a partial, then called: Hydra would turn the Evaluation dataclass into a config
    return instantiate(cfg.model, _partial_=True)(
        encoder=encoder,
        loss=instantiate(cfg.loss),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.scheduler else None,
        evaluation=evaluation,
        pixel_mean=pixel_mean,
        pixel_std=pixel_std,
    )


class ConfigInCheckpoint(Callback):
    """Stores the resolved config in every checkpoint, so a checkpoint alone rebuilds its model."""

    def __init__(self, cfg: DictConfig):
        self.config = OmegaConf.to_container(cfg, resolve=True)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.config


def make_trainer(cfg: DictConfig, run_dir: Path) -> pl.Trainer:
    logger = instantiate(cfg.logger, save_dir=str(run_dir)) if cfg.logger else False
    checkpoints = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor=cfg.evaluation.monitor,
        mode=cfg.evaluation.mode,
        save_last=True,
        auto_insert_metric_name=False,
    )
    return instantiate(
        cfg.trainer,
        logger=logger,
        default_root_dir=str(run_dir),
        callbacks=[checkpoints, ConfigInCheckpoint(cfg)],
    )


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
        validate(cfg)
        refuse_ddp_in_sweep(cfg)
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        datamodule, module = build(cfg)
        if main_process:  # after build: it fills the keys the data decides (loss.num_classes)
            OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        test = datamodule.splits["test"]
        untrained = retrieval_metrics(
            *embed_split(module, test), ks=(1,), distance=cfg.embedding.distance
        )["p_at_1"]
        trainer = make_trainer(cfg, run_dir)
        start = time.time()
        trainer.fit(module, datamodule)
        fit_s = time.time() - start
        ckpt = cfg.evaluation.test_on
        (val,) = trainer.validate(module, datamodule, ckpt_path=ckpt, verbose=False)
        (test,) = trainer.test(module, datamodule, ckpt_path=ckpt, verbose=False)
        metrics = {k: float(v) for k, v in (val | test).items()}
        metrics["test/p_at_1_untrained"] = untrained
        if main_process:
            embeddings, labels = module.embeddings["test"]
            torch.save({"embeddings": embeddings, "labels": labels}, run_dir / "test_embeddings.pt")
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
        untrained,
        metrics["test/auc"],
        metrics["test/threshold"],
        fit_s,
        run_dir,
    )
    return metrics[cfg.evaluation.monitor]
