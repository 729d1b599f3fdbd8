"""Assembly: the data module, the LightningModule, the scorer and the trainer a config describes."""

from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from siamese.callbacks import ConfigInCheckpoint, DataOnDevice, SplitScores
from siamese.checks import ConfigValueError, build_node
from siamese.data import SiameseDataModule
from siamese.models.encoder import Encoder
from siamese.modules import SiameseModule
from siamese.scoring import Scorer


def build(cfg: DictConfig) -> tuple[SiameseDataModule, SiameseModule]:
    """The data module (set up) and the LightningModule that a config describes."""
    # each DDP rank draws its own batches (rank 0 of a single-device run: seed itself)
    seed = cfg.seed + rank_zero_only.rank
    datamodule = build_node(cfg.data, "data", sampler=build_node(cfg.sampler, "sampler"), seed=seed)
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
    """The LightningModule alone: also what a checkpoint is rebuilt into."""
    backbone = build_node(cfg.backbone, "backbone")
    encoder = Encoder(backbone, cfg.embedding.dim, cfg.embedding.l2_normalize)
    # a partial, then called: the tensors and modules pass through as they are
    return build_node(cfg.model, "model", _partial_=True)(
        encoder=encoder,
        loss=build_node(cfg.loss, "loss"),
        optimizer=build_node(cfg.optimizer, "optimizer"),
        scheduler=build_node(cfg.scheduler, "scheduler") if cfg.scheduler else None,
        distance=cfg.embedding.distance,
        pixel_mean=pixel_mean,
        pixel_std=pixel_std,
    )


def build_scorer(cfg: DictConfig) -> Scorer:
    """Metrics as `evaluation.*` asks; one-shot trials fixed by the split seed, not the run's."""
    e = cfg.evaluation
    try:
        return Scorer(
            distance=cfg.embedding.distance,
            recall_ks=tuple(e.recall_ks),
            one_shot_ways=tuple(e.one_shot_ways),
            one_shot_trials=e.one_shot_trials,
            chunk_size=e.chunk_size,
            seed=cfg.data.split_seed,
        )
    except ValueError as err:
        raise ConfigValueError(f"evaluation.{err}") from err


def make_trainer(
    cfg: DictConfig,
    run_dir: Path,
    pairs: dict[str, torch.Tensor],
    callbacks: list[Callback] = (),
) -> pl.Trainer:
    """The trainer of a run in `run_dir`: best/last checkpoints, the config in each of them, and
    the val/test scoring on the fixed `pairs`."""
    logger = build_node(cfg.logger, "logger", save_dir=str(run_dir)) if cfg.logger else False
    checkpoints = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor=cfg.evaluation.monitor,
        mode=cfg.evaluation.mode,
        save_last=True,
        auto_insert_metric_name=False,
    )
    scores = SplitScores(build_scorer(cfg), pairs, run_dir / "test_embeddings.pt")
    return build_node(
        cfg.trainer,
        "trainer",
        logger=logger,
        default_root_dir=str(run_dir),
        callbacks=[DataOnDevice(), scores, checkpoints, ConfigInCheckpoint(cfg), *callbacks],
    )
