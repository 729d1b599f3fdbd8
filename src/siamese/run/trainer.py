"""The trainer of a run: its logger and dashboards, best/last checkpoints, the divergence guard,
the val/test scoring, and the config in every checkpoint."""

from dataclasses import fields
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint

from siamese.core.atomic import AtomicCheckpointIO
from siamese.core.errors import ArgumentError
from siamese.data.batches import DataOnDevice
from siamese.data.datamodule import SiameseDataModule
from siamese.metrics.callback import Dashboards, SplitScores
from siamese.run.build import build_node, build_scorer
from siamese.run.checkpoint import ConfigInCheckpoint
from siamese.run.guards import DivergenceGuard

DASHBOARD_KEYS = frozenset(f.name for f in fields(Dashboards) if f.name != "splits")


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
        # the dashboards' switches are no arguments of the logger
        node = OmegaConf.to_container(cfg.logger, resolve=True)
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
    try:
        guard = DivergenceGuard(cfg.guard.max_loss, cfg.guard.max_weight_norm)
    except ArgumentError as err:
        raise err.at("guard") from err
    names = {s: d.class_names for s, d in datamodule.splits.items()}
    scores = SplitScores(
        build_scorer(cfg), datamodule.pairs, run_dir / "test_embeddings.pt", pictures, names
    )
    callbacks = [*callbacks, *early_stopping(cfg.evaluation)]
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
            ConfigInCheckpoint(cfg, names["train"]),
            *callbacks,
        ],
    )


def early_stopping(evaluation: DictConfig) -> list[Callback]:
    """The stopping rule besides trainer.max_epochs/max_steps: training stops once
    `evaluation.patience` validations in a row have not improved `evaluation.monitor`; none
    when it is null (its range is checked with the config: checks.RULES)."""
    if evaluation.patience is None:
        return []
    return [EarlyStopping(evaluation.monitor, patience=evaluation.patience, mode=evaluation.mode)]
