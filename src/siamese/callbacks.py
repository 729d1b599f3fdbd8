"""Callbacks of a run: the config in every checkpoint, and the scoring of val and test splits."""

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback
from torch import Tensor

from siamese.scoring import Scorer

CONFIG_KEY = "siamese_config"  # where every checkpoint of this package keeps its resolved config


class ConfigInCheckpoint(Callback):
    """Stores the resolved config in every checkpoint, so a checkpoint alone rebuilds its model."""

    def __init__(self, cfg: DictConfig):
        self.config = OmegaConf.to_container(cfg, resolve=True)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.config


class DataOnDevice(Callback):
    """Moves the data module's splits and sampling to the run's device once, at set-up."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if trainer.datamodule is not None:
            trainer.datamodule.place(trainer.strategy.root_device)


class SplitScores(Callback):
    """Scores a split from the embeddings its validation or test loop produced, once per epoch:
    val chooses τ (kept in the module's `threshold` buffer, so every checkpoint carries it), test
    applies it unchanged. `pairs` are the fixed val/test pairs, handed over at build time;
    `embeddings_path`, if given, receives the test split's embeddings and labels."""

    def __init__(
        self, scorer: Scorer, pairs: dict[str, Tensor], embeddings_path: Path | None = None
    ):
        self.scorer, self.pairs, self.embeddings_path = scorer, pairs, embeddings_path
        self._collected: list[tuple[Tensor, Tensor]] = []

    def _collect(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collected.append((outputs["embeddings"], outputs["labels"]))

    on_validation_batch_end = on_test_batch_end = _collect

    def _take(self) -> tuple[Tensor, Tensor]:
        # left on their device: the metrics run there and only the numbers come back
        embeddings = torch.cat([e for e, _ in self._collected])
        labels = torch.cat([y for _, y in self._collected])
        self._collected.clear()
        return embeddings, labels

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:  # a partial split: nothing meaningful to score
            self._collected.clear()
            return
        metrics = self.scorer(*self._take(), self.pairs["val"])
        pl_module.threshold.fill_(metrics["threshold"])
        pl_module.log_dict({f"val/{k}": v for k, v in metrics.items()})

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        embeddings, labels = self._take()
        metrics = self.scorer(embeddings, labels, self.pairs["test"], float(pl_module.threshold))
        pl_module.log_dict({f"test/{k}": v for k, v in metrics.items()})
        if self.embeddings_path is not None and trainer.is_global_zero:
            saved = {"embeddings": embeddings.float().cpu(), "labels": labels.cpu()}
            torch.save(saved, self.embeddings_path)
