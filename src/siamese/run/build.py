"""Assembly: the data module, the LightningModule and the scorer a config describes.

Every project object is built by `build_node`, which puts the node's key in front of a
constructor's `ArgumentError` (`margin must be > 0` becomes `loss.margin must be > 0`).
"""

from dataclasses import fields
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from siamese.config.options import DataModuleConf
from siamese.core.errors import ArgumentError, ConfigValueError, UserError
from siamese.data.datamodule import SiameseDataModule
from siamese.metrics.scoring import Scorer
from siamese.models.encoder import Encoder
from siamese.models.lightning import SiameseModule
from siamese.models.speed import apply_speed

# the data module's own keys; every other key of a data option belongs to its source
DATAMODULE_KEYS = frozenset(f.name for f in fields(DataModuleConf))


def build_node(node: Any, key: str, **kwargs: Any) -> Any:
    """`instantiate(node, **kwargs)`; a constructor's ArgumentError comes back as a
    ConfigValueError naming the full key (`key.argument`), its other user errors as they are."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ArgumentError):
            raise err.__cause__.at(key) from err.__cause__
        if isinstance(err.__cause__, UserError):
            raise err.__cause__ from None
        raise


def call_node(node: Any, key: str, **objects: Any) -> Any:
    """The object of `node` built with `objects` (modules, tensors, other built objects), which
    pass through as they are rather than into the config; errors named as by build_node."""
    make = build_node(node, key, _partial_=True)
    try:
        return make(**objects)
    except ArgumentError as err:
        raise err.at(key) from err


def build(cfg: DictConfig) -> tuple[SiameseDataModule, SiameseModule]:
    """The data module (set up) and the LightningModule that a config describes."""
    # each DDP rank draws its own batches (rank 0 of a single-device run: seed itself)
    seed = cfg.seed + rank_zero_only.rank
    sampler = build_node(cfg.sampler, "sampler")
    datamodule = build_datamodule(cfg.data, sampler=sampler, seed=seed)
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


def build_datamodule(data: DictConfig, sampler: Any = None, seed: int = 0) -> SiameseDataModule:
    """The data module of `data` (the config's data node), set up. Its source gets the keys of
    `data.source` and the data option's keys that are not the data module's (`data.root`)."""
    values = OmegaConf.to_container(data, resolve=True)
    source_node = values.pop("source")
    beside = {
        k: values.pop(k) for k in list(values) if k != "_target_" and k not in DATAMODULE_KEYS
    }
    try:
        source = instantiate(source_node, **beside)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, ArgumentError):
            raise cause.at("data" if cause.argument in beside else "data.source") from cause
        if isinstance(cause, UserError):
            raise cause from None
        raise
    datamodule = call_node(values, "data", source=source, sampler=sampler, seed=seed)
    try:
        datamodule.setup("fit")
    except ArgumentError as err:  # the split, the batch size: checked against the data
        raise err.at("data") from err
    return datamodule


def build_module(
    cfg: DictConfig, pixel_mean: torch.Tensor, pixel_std: torch.Tensor
) -> SiameseModule:
    """The LightningModule alone: also what a checkpoint is rebuilt into."""
    normalization = build_node(cfg.normalization, "normalization")
    backbone = call_node(cfg.backbone, "backbone", normalization=normalization)
    if getattr(backbone, "input_mean", None) is not None:  # pretrained: its weights' statistics
        pixel_mean, pixel_std = backbone.input_mean, backbone.input_std
    encoder = Encoder(backbone, cfg.embedding.dim, cfg.embedding.l2_normalize)
    augment = build_node(cfg.augmentation, "augmentation") if cfg.get("augmentation") else None
    return call_node(
        cfg.model,
        "model",
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
            rerank_k=e.rerank_k,
            seed=cfg.data.split_seed,
            fmr_targets=tuple(e.fmr_targets),
        )
    except ArgumentError as err:
        raise err.at("evaluation") from err
