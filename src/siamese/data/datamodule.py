"""The LightningDataModule: one in-memory data set, split, and batches of sampled index tuples."""

import logging
from dataclasses import replace
from typing import Protocol

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from siamese.core.errors import ArgumentError, at_least
from siamese.data.batches import SampledBatches, SplitBatches, TrainLoader
from siamese.data.images import check_decode_options
from siamese.data.imageset import ImageSet, pixel_stats
from siamese.data.samplers import PairSampler, Sampler
from siamese.data.splits import SPLITS, check_split_options, split_indices

log = logging.getLogger(__name__)


class ImageSource(Protocol):
    """A data option's source (`data.source._target_`): the whole data set, decoded as asked."""

    def __call__(
        self, *, image_size: int, channels: int = 3, resize: str = "stretch"
    ) -> ImageSet: ...


class SiameseDataModule(pl.LightningDataModule):
    """`source(channels=, image_size=, resize=)` gives the whole data set as an `ImageSet`; it is
    split (by class unless `split_by="samples"`), the `sampler` is bound to the training split, and
    batches of its index tuples are gathered from it. `batch_size` counts tuples, or
    `images_per_step` images shared out into tuples; fixed val/test pairs come from `split_seed`.
    An epoch is `steps_per_epoch` steps, or (None) one pass over the training images."""

    def __init__(
        self,
        source: ImageSource,
        image_size: int,
        split: dict[str, float],
        steps_per_epoch: int | None,
        channels: int = 3,
        resize: str = "stretch",
        batch_size: int = 64,
        images_per_step: int | None = None,
        eval_batch_size: int = 512,
        eval_pairs: int = 2000,
        split_by: str = "classes",
        split_seed: int = 0,
        folds: int | None = None,
        fold: int = 0,
        loader_workers: int = 4,
        sampler: Sampler | None = None,
        seed: int = 0,
    ):
        super().__init__()
        check_decode_options(channels, image_size, resize)
        for name in ("batch_size", "eval_batch_size", "eval_pairs"):
            at_least(name, locals()[name], 1)
        for name in ("images_per_step", "steps_per_epoch"):
            if locals()[name] is not None:
                at_least(name, locals()[name], 1)
        at_least("loader_workers", loader_workers, 0)
        split = dict(split)
        check_split_options(split, split_by, folds, fold)
        self.source, self.sampler = source, sampler
        self.channels, self.image_size = channels, image_size
        self.resize = resize  # how image files become this data's images (verify/search decode so)
        self._batch_size, self.images_per_step = batch_size, images_per_step
        self.batch_size = batch_size  # in tuples; set from images_per_step once bound
        self.steps_per_epoch = steps_per_epoch
        self.eval_batch_size, self.eval_pairs = eval_batch_size, eval_pairs
        self.split = split
        self.split_by, self.split_seed = split_by, split_seed
        self.folds, self.fold = folds, fold
        self.loader_workers = loader_workers
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.splits: dict[str, ImageSet] = {}
        self.pairs: dict[str, Tensor] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        data = self.source(channels=self.channels, image_size=self.image_size, resize=self.resize)
        expected = (self.channels, self.image_size, self.image_size)
        if tuple(data.images.shape[1:]) != expected:
            raise ValueError(
                f"channels/image_size say images are {expected}, the source gives "
                f"{tuple(data.images.shape[1:])}"
            )
        index = split_indices(
            data.labels,
            self.split,
            self.split_by,
            self.split_seed,
            given=data.split,  # a manifest's split column, Omniglot's protocol
            class_names=data.class_names,
            folds=self.folds,
            fold=self.fold,
        )
        self.splits = {s: data.subset(index[s]) for s in SPLITS}
        if self.sampler is not None:  # evaluation-only use needs none
            train = self.splits["train"]
            self.sampler.bind(train.labels, self.generator, train.class_names)
            self._set_batch_size()
        # fixed by the split seed, not the run's seed: every run is scored on the same pairs
        for i, s in enumerate(SPLITS[1:], start=1):
            g = torch.Generator().manual_seed(self.split_seed + 1000 * i)
            pairs = PairSampler().bind(self.splits[s].labels, g)
            self.pairs[s] = pairs.sample(self.eval_pairs)

    def _set_batch_size(self) -> None:
        """Tuples per step: batch_size, or images_per_step shared out into tuples so that methods
        with different tuple sizes see the same number of images per step; checked against the
        bound sampler before training, not at its first step."""
        size = self.sampler.tuple_size
        if self.images_per_step is None:
            self.batch_size = self._batch_size
        elif self.images_per_step % size:
            raise ArgumentError(
                "images_per_step",
                f"={self.images_per_step} is not a multiple of the sampler's tuple size {size}: "
                "choose a multiple of 6 to compare pairs with triplets",
            )
        else:
            self.batch_size = self.images_per_step // size
        try:
            self.sampler.check_batch_size(self.batch_size)
        except ArgumentError as err:
            if self.images_per_step is None:
                raise
            raise ArgumentError("images_per_step", f"={self.images_per_step} gives {err}") from None

    @property
    def tuple_size(self) -> int:
        return self.sampler.tuple_size

    @property
    def num_train_classes(self) -> int:
        return len(self.splits["train"].class_names)

    def pixel_stats(self) -> tuple[Tensor, Tensor]:
        """Per-channel mean and std of the training images (in [0, 1])."""
        return pixel_stats(self.splits["train"].images)

    def train_steps(self, world_size: int = 1) -> int:
        """Steps per epoch: `steps_per_epoch`, or as many as one pass over the training images
        takes, shared out among `world_size` processes (each DDP rank draws its own batches)."""
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        images = self.batch_size * self.tuple_size * world_size
        return -(-len(self.splits["train"]) // images)

    def train_dataloader(self) -> DataLoader:
        world_size = self.trainer.world_size if self.trainer is not None else 1
        steps = self.train_steps(world_size)
        if self.steps_per_epoch is None:
            log.info(
                "an epoch: %d steps of %d images, a pass over the %d training images",
                steps,
                self.batch_size * self.tuple_size * world_size,
                len(self.splits["train"]),
            )
        batches = SampledBatches(self.sampler, self.batch_size, steps, self.seed)
        train = self.splits["train"]
        # streamed images are decoded in worker processes; in memory a gather needs none
        workers = self.loader_workers if train.streaming else 0
        return TrainLoader(train, batches, self._consumed, workers)

    def _consumed(self) -> int:
        """Training batches the model has taken this epoch (Lightning's count, read when a
        checkpoint is saved: after a batch's hooks, or at the epoch's end)."""
        return self.trainer.fit_loop.epoch_loop.batch_progress.current.processed

    def val_dataloader(self) -> DataLoader:
        return DataLoader(SplitBatches(self.splits["val"], self.eval_batch_size), batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(SplitBatches(self.splits["test"], self.eval_batch_size), batch_size=None)

    def place(self, device: torch.device) -> None:
        """Hold the splits on `device` and sample there, so that no training step gathers on the
        host or copies images to the device. Called at set-up, before any batch is drawn; a
        no-op on the CPU."""
        device = torch.device(device)
        in_memory = all(isinstance(d.images, Tensor) for d in self.splits.values())
        if device.type == "cpu" or not self.splits or not in_memory:
            return
        if self.generator.device == device:  # placed already (set-up runs again for test)
            return
        self.splits = {
            s: replace(d, images=d.images.to(device), labels=d.labels.to(device))
            for s, d in self.splits.items()
        }
        self.generator = torch.Generator(device).manual_seed(self.seed)
        if self.sampler is not None:
            self.sampler.to(self.generator)
