"""The trainer of a run: its loggers and dashboards, best/last checkpoints, the divergence guard,
the val/test scoring, and the config in every checkpoint."""

from dataclasses import fields
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint

from siamese.core.errors import ArgumentError
from siamese.data.batches import DataOnDevice
from siamese.data.datamodule import SiameseDataModule
from siamese.metrics.callback import Dashboards, SplitScores
from siamese.run.build import build_node, build_scorer
from siamese.run.checkpoint import CheckpointFiles, ConfigInCheckpoint
from siamese.run.guards import DivergenceGuard
from siamese.run.loggers import build_loggers

DASHBOARD_KEYS = frozenset(f.name for f in fields(Dashboards) if f.name != "splits")


def make_trainer(
    cfg: DictConfig,
    run_dir: Path,
    datamodule: SiameseDataModule,
    callbacks: list[Callback] = (),
) -> pl.Trainer:
    """The trainer of a run in `run_dir`: best/last checkpoints, the config in each of them, and
    the val/test scoring (and dashboards) on the data module's fixed pairs and splits."""
    loggers, switches = build_loggers(cfg.logger, run_dir, DASHBOARD_KEYS)
    pictures = None if switches is None else Dashboards(datamodule.splits, **switches)
    folder = run_dir / "checkpoints"
    # fixed names (a resumed run overwrites them, no best-v1.ckpt), written atomically; the
    # first checkpoint callback, so trainer.checkpoint_callback is this one (tested_checkpoint)
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
        logger=loggers or False,
        default_root_dir=str(run_dir),
        plugins=[CheckpointFiles(trust=cfg.trust)],
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


def tested_checkpoint(trainer: pl.Trainer, test_on: str) -> str:
    """The checkpoint `evaluation.test_on` names: best.ckpt by the path its own callback kept (asked
    for "best", Lightning would warn that there are two checkpoint callbacks), or "last"."""
    return trainer.checkpoint_callback.best_model_path if test_on == "best" else test_on


def early_stopping(evaluation: DictConfig) -> list[Callback]:
    """The stopping rule besides trainer.max_epochs/max_steps: training stops once
    `evaluation.patience` validations in a row have not improved `evaluation.monitor`; none
    when it is null (its range is checked with the config: checks.RULES)."""
    if evaluation.patience is None:
        return []
    return [EarlyStopping(evaluation.monitor, patience=evaluation.patience, mode=evaluation.mode)]
