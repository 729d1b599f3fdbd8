"""Assembly: the data module, the LightningModule, the scorer and the trainer a config describes."""

import copy
import inspect
from dataclasses import fields
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from siamese.config.checks import ConfigValueError, build_node
from siamese.core.atomic import AtomicCheckpointIO
from siamese.data.batches import DataOnDevice
from siamese.data.datamodule import SiameseDataModule
from siamese.metrics.callback import Dashboards, SplitScores
from siamese.metrics.scoring import Scorer
from siamese.models.encoder import Encoder
from siamese.models.lightning import SiameseModule
from siamese.models.speed import apply_speed
from siamese.run.checkpoint import ConfigInCheckpoint
from siamese.run.guards import DivergenceGuard


def build(cfg: DictConfig) -> tuple[SiameseDataModule, SiameseModule]:
    """The data module (set up) and the LightningModule that a config describes."""
    # each DDP rank draws its own batches (rank 0 of a single-device run: seed itself)
    seed = cfg.seed + rank_zero_only.rank
    sampler = build_node(cfg.sampler, "sampler")
    datamodule = build_node(datamodule_node(cfg.data), "data", sampler=sampler, seed=seed)
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
    apply_speed(module, **cfg.speed)
    if datamodule.tuple_size != module.loss.tuple_size:
        raise ConfigValueError(
            f"sampler draws tuples of {datamodule.tuple_size} but loss "
            f"{type(module.loss).__name__} takes tuples of {module.loss.tuple_size}: "
            "choose loss= alone, it brings its sampler"
        )
    return datamodule, module


def datamodule_node(data: DictConfig) -> DictConfig:
    """The data node without the keys only its source reads: a user sets data.root= beside
    data.image_size=, and the source takes them through interpolation (`root: ${..root}`)."""
    node = copy.deepcopy(data)
    node._set_parent(data._get_parent())  # interpolations resolve as in the whole config
    OmegaConf.resolve(node)
    takes = inspect.signature(get_class(node._target_)).parameters
    with open_dict(node):
        for key in [k for k in node if not k.startswith("_") and k not in takes]:
            del node[key]
    return node


def build_module(
    cfg: DictConfig, pixel_mean: torch.Tensor, pixel_std: torch.Tensor
) -> SiameseModule:
    """The LightningModule alone: also what a checkpoint is rebuilt into."""
    backbone = build_node(cfg.backbone, "backbone")
    if getattr(backbone, "input_mean", None) is not None:  # pretrained: its weights' statistics
        pixel_mean, pixel_std = backbone.input_mean, backbone.input_std
    encoder = Encoder(backbone, cfg.embedding.dim, cfg.embedding.l2_normalize)
    augment = build_node(cfg.augmentation, "augmentation") if cfg.get("augmentation") else None
    # a partial, then called: the tensors and modules pass through as they are
    return build_node(cfg.model, "model", _partial_=True)(
        encoder=encoder,
        loss=build_node(cfg.loss, "loss"),
        optimizer=build_node(cfg.optimizer, "optimizer"),
        scheduler=build_node(cfg.scheduler, "scheduler") if cfg.scheduler else None,
        distance=cfg.embedding.distance,
        augment=augment,
        augment_seed=cfg.seed + rank_zero_only.rank,
        fmr_targets=tuple(cfg.evaluation.fmr_targets),
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
            fmr_targets=tuple(e.fmr_targets),
        )
    except ValueError as err:
        raise ConfigValueError(f"evaluation.{err}") from err


DASHBOARD_KEYS = tuple(f.name for f in fields(Dashboards) if f.name != "splits")


def make_trainer(
    cfg: DictConfig,
    run_dir: Path,
    datamodule: SiameseDataModule,
    callbacks: list[Callback] = (),
) -> pl.Trainer:
    """The trainer of a run in `run_dir`: best/last checkpoints, the config in each of them, and
    the val/test scoring (and dashboards) on the data module's fixed pairs and splits."""
    logger, pictures = False, None
    if cfg.logger:
        node = copy.deepcopy(cfg.logger)
        with open_dict(node):  # the dashboards' switches are no arguments of the logger
            switches = {k: node.pop(k) for k in DASHBOARD_KEYS if k in node}
        logger = build_node(node, "logger", save_dir=str(run_dir))
        pictures = Dashboards(datamodule.splits, **switches)
    folder = run_dir / "checkpoints"
    # fixed names (a resumed run overwrites them, no best-v1.ckpt), written atomically
    best = ModelCheckpoint(
        dirpath=folder,
        filename="best",
        monitor=cfg.evaluation.monitor,
        mode=cfg.evaluation.mode,
        save_last=True,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    # last.ckpt also every few steps: a kill loses minutes, not an epoch
    every = ModelCheckpoint(
        dirpath=folder,
        save_top_k=0,
        save_last=True,
        every_n_train_steps=cfg.checkpoint.every_n_steps,
        enable_version_counter=False,
    )
    guard = DivergenceGuard(cfg.guard.max_loss, cfg.guard.max_weight_norm)
    scorer = build_scorer(cfg)
    scores = SplitScores(scorer, datamodule.pairs, run_dir / "test_embeddings.pt", pictures)
    names = datamodule.splits["train"].class_names
    return build_node(
        cfg.trainer,
        "trainer",
        logger=logger,
        default_root_dir=str(run_dir),
        plugins=[AtomicCheckpointIO()],
        callbacks=[
            DataOnDevice(),
            scores,
            guard,
            best,
            every,
            ConfigInCheckpoint(cfg, names),
            *callbacks,
        ],
    )
