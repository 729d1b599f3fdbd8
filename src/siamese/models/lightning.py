"""LightningModules for the pair and the triplet Siamese model; the step code is written once."""

from collections.abc import Callable
from typing import ClassVar

import pytorch_lightning as pl
import torch
from torch import Tensor

from siamese.core.distances import check_distance, pair_distance
from siamese.losses import SiameseLoss
from siamese.models.encoder import Encoder


class SiameseModule(pl.LightningModule):
    """Embeds every image of a (B, T, C, H, W) batch with one shared encoder and scores the tuples
    with the loss. Validation and test steps return each split's embeddings; the SplitScores
    callback scores them and sets τ (`threshold`)."""

    tuple_sizes: ClassVar[tuple[int, ...]]

    def __init__(
        self,
        encoder: Encoder,
        loss: SiameseLoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        pixel_mean: Tensor,
        pixel_std: Tensor,
        scheduler: Callable[..., object] | None = None,
        distance: str = "euclidean",
        augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
        augment_seed: int = 0,
        fmr_targets: tuple[float, ...] = (),
    ):
        super().__init__()
        if loss.tuple_size not in self.tuple_sizes:
            raise ValueError(
                f"{type(loss).__name__} trains on tuples of {loss.tuple_size}, but "
                f"{type(self).__name__} takes tuples of {self.tuple_sizes}"
            )
        self.encoder, self.loss = encoder, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        check_distance(distance)
        self.distance_kind = distance
        self.augment, self.augment_seed = augment, augment_seed
        self.channels_last = False  # siamese.models.speed sets it with the encoder's memory order
        self._augment_generator: torch.Generator | None = None
        self._augmented = 0  # batches augmented so far: a resumed run replays their draws
        # the training split's statistics, kept with the weights so any later use sees the same input
        self.register_buffer("pixel_mean", torch.as_tensor(pixel_mean, dtype=torch.float32))
        self.register_buffer("pixel_std", torch.as_tensor(pixel_std, dtype=torch.float32))
        # τ is chosen on val each epoch and travels with every checkpoint
        self.register_buffer("threshold", torch.tensor(float("nan")))
        # and the τ of each false-match-rate target, likewise chosen on val
        self.fmr_targets = tuple(fmr_targets)
        self.register_buffer("fmr_thresholds", torch.full((len(fmr_targets),), float("nan")))

    def embed(self, images: Tensor) -> Tensor:
        """uint8 images (..., C, H, W) → embeddings (..., D): all tuple members in one pass."""
        lead = images.shape[:-3]
        x = images.flatten(0, -4).float().div(255)
        x = (x - self.pixel_mean[:, None, None]) / self.pixel_std[:, None, None]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.encoder(x).unflatten(0, lead)

    def chosen_fmr_thresholds(self) -> dict[float, float]:
        return dict(zip(self.fmr_targets, self.fmr_thresholds.tolist(), strict=True))

    def distance(self, u: Tensor, v: Tensor) -> Tensor:
        return pair_distance(u, v, self.distance_kind)

    def pair_scorer(self) -> Callable[[Tensor, Tensor], Tensor] | None:
        """What scores a verification pair of embeddings: the loss's learned head ((u, v) →
        1 − p(same), so that d < τ still means same), or None: the embedding distance."""
        return self.loss.pair_head()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        images = batch["images"]
        if self.augment is not None:  # training batches only, never val/test
            images = self.augment(images, self.augment_generator(images))
            self._augmented += 1
        out = self.loss(self.embed(images), batch["labels"])
        if self._written_step():  # each self.log costs bookkeeping; other steps' values are dropped
            batch_size = batch["labels"].shape[0]
            self.log("train/loss", out.loss, batch_size=batch_size)
            self.log_dict({f"train/{k}": v for k, v in out.parts.items()}, batch_size=batch_size)
        return out.loss

    def _written_step(self) -> bool:
        """Whether Lightning hands this step's logged values to the logger (the step after
        which global_step is a multiple of log_every_n_steps)."""
        every = self.trainer.log_every_n_steps
        return bool(every) and (self.trainer.global_step + 1) % every == 0

    def augment_generator(self, images: Tensor) -> torch.Generator:
        """The augmentation's generator, on the batch's device, seeded from the run's seed (and
        rank); after a resume it first replays the draws of the batches augmented before, so the
        run continues as an uninterrupted one would, on any device."""
        device = images.device
        if self._augment_generator is None or self._augment_generator.device != device:
            self._augment_generator = torch.Generator(device).manual_seed(self.augment_seed)
            self.augment.replay(self._augment_generator, images, self._augmented)
        return self._augment_generator

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["augmented_batches"] = self._augmented

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._augmented = int(checkpoint.get("augmented_batches", 0))
        self._augment_generator = None

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        return {"embeddings": self.embed(batch["images"])[:, 0], "labels": batch["labels"][:, 0]}

    test_step = validation_step

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }


class PairSiameseModule(SiameseModule):
    """(x1, x2) → (f(x1), f(x2), d). Also trains on P×K batches (all in-batch pairs)."""

    tuple_sizes = (2, 1)

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f1, f2 = self.embed(torch.stack([x1, x2], 1)).unbind(1)
        return f1, f2, self.distance(f1, f2)


class TripletSiameseModule(SiameseModule):
    """(a, p, n) → (f(a), f(p), f(n)). Also trains on P×K batches (in-batch mined triplets)."""

    tuple_sizes = (3, 1)

    def forward(self, a: Tensor, p: Tensor, n: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        fa, fp, fn = self.embed(torch.stack([a, p, n], 1)).unbind(1)
        return fa, fp, fn


__all__ = ["PairSiameseModule", "SiameseModule", "TripletSiameseModule"]
