"""The scoring callback: val and test splits scored from the embeddings their loops produced, and
the TensorBoard pictures drawn from them."""

from dataclasses import dataclass
from pathlib import Path

import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import TensorBoardLogger
from torch import Tensor

from siamese.core.atomic import atomic_torch_save
from siamese.data.imageset import ImageSet
from siamese.metrics import dashboards, fmr_thresholds
from siamese.metrics.scoring import Scorer


@dataclass
class Dashboards:
    """The TensorBoard pictures of a run, each switched by the logger config: distance histograms
    per validation epoch; the projector, the worst errors and the ROC/PR curves of the test split.
    `splits` give the images and class names; nothing here runs per training step."""

    splits: dict[str, ImageSet]
    projector: bool = True
    projector_max_points: int = 1000
    distance_histograms: bool = True
    worst_errors: bool = True
    worst_errors_k: int = 8
    curves: bool = True

    def validation(self, writer, d: Tensor, same: Tensor, tau: float, step: int) -> None:
        if self.distance_histograms:
            dashboards.log_distance_histograms(writer, d, same, tau, step)

    def test(self, writer, embeddings, labels, pairs, d, same, tau: float, step: int) -> None:
        split = self.splits["test"]
        if self.projector:
            dashboards.log_projector(
                writer,
                embeddings,
                labels,
                split.class_names,
                split.images,
                self.projector_max_points,
                step,
            )
        if self.worst_errors:
            dashboards.log_worst_errors(
                writer, split.images, pairs, d, same, tau, step, self.worst_errors_k
            )
        if self.curves:
            dashboards.log_verification_curves(writer, d, same, step, "test", tau)


class SplitScores(Callback):
    """Scores a split from the embeddings its validation or test loop produced, once per epoch:
    val chooses τ (kept in the module's `threshold` buffer, so every checkpoint carries it), test
    applies it unchanged (so do the τ of each false-match-rate target). Pairs are scored by the
    module's learned pair head where its loss has one (loss=koch), else by embedding distance.
    `pairs` are the fixed val/test pairs, handed over at build time; `embeddings_path`, if given,
    receives the test split's embeddings and labels; `dashboards` draws from the same embeddings;
    `class_names` (per split) add the one-shot accuracy within groups of classes where the names
    have them."""

    def __init__(
        self,
        scorer: Scorer,
        pairs: dict[str, Tensor],
        embeddings_path: Path | None = None,
        dashboards: Dashboards | None = None,
        class_names: dict[str, list[str]] | None = None,
    ):
        self.scorer, self.pairs, self.embeddings_path = scorer, pairs, embeddings_path
        self.dashboards, self.class_names = dashboards, class_names or {}
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
        embeddings, labels = self._take()
        pairs, head = self.pairs["val"], pl_module.pair_scorer()
        names = self.class_names.get("val")
        metrics = self.scorer(embeddings, labels, pairs, class_names=names, pair_scorer=head)
        pl_module.threshold.fill_(metrics["threshold"])
        chosen = fmr_thresholds(metrics, self.scorer.fmr_targets)
        pl_module.fmr_thresholds.copy_(torch.tensor([chosen[t] for t in self.scorer.fmr_targets]))
        pl_module.log_dict({f"val/{k}": v for k, v in metrics.items()})
        if (writer := self._writer(trainer)) is not None:
            d, same = self.scorer.pair_distances(embeddings, labels, pairs, head)
            self.dashboards.validation(writer, d, same, metrics["threshold"], trainer.global_step)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        embeddings, labels = self._take()
        pairs, tau, head = self.pairs["test"], float(pl_module.threshold), pl_module.pair_scorer()
        fmr_taus, names = pl_module.chosen_fmr_thresholds(), self.class_names.get("test")
        roles = self._roles(trainer)
        metrics = self.scorer(embeddings, labels, pairs, tau, fmr_taus, roles, names, head)
        pl_module.log_dict({f"test/{k}": v for k, v in metrics.items()})
        if self.embeddings_path is not None and trainer.is_global_zero:
            saved = {"embeddings": embeddings.float().cpu(), "labels": labels.cpu()}
            atomic_torch_save(saved, self.embeddings_path)
        if (writer := self._writer(trainer)) is not None:
            d, same = self.scorer.pair_distances(embeddings, labels, pairs, head)
            args = (embeddings.cpu(), labels.cpu(), pairs.cpu(), d.cpu(), same.cpu())
            self.dashboards.test(writer, *args, tau, trainer.global_step)

    @staticmethod
    def _roles(trainer) -> Tensor | None:
        """The test split's query/gallery roles (a manifest's is_query/is_gallery), in the order
        its test loop embeds it (whole, in order, on every rank)."""
        splits = getattr(trainer.datamodule, "splits", None) or {}
        return splits["test"].roles if "test" in splits else None

    def _writer(self, trainer):
        """TensorBoard's SummaryWriter when there are dashboards to draw (rank 0 only), also
        beside other loggers."""
        if self.dashboards is None or not trainer.is_global_zero:
            return None
        boards = [x for x in trainer.loggers if isinstance(x, TensorBoardLogger)]
        return boards[0].experiment if boards else None
