"""The LightningDataModule: one in-memory data set, split, and batches of sampled index tuples."""

from collections.abc import Callable
from dataclasses import replace

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from siamese.data.batches import SampledBatches, SplitBatches, TrainLoader
from siamese.data.imageset import ImageSet, pixel_stats
from siamese.data.samplers import PairSampler
from siamese.data.splits import SPLITS, split_indices


class SiameseDataModule(pl.LightningDataModule):
    def __init__(
        self,
        source: Callable[[], ImageSet],
        sampler: Callable[..., object] | None = None,
        channels: int = 3,
        image_size: int = 32,
        batch_size: int = 64,
        images_per_step: int | None = None,
        steps_per_epoch: int = 100,
        eval_batch_size: int = 512,
        eval_pairs: int = 2000,
        split: dict[str, float] | None = None,
        split_by: str = "classes",
        split_seed: int = 0,
        folds: int | None = None,
        fold: int = 0,
        loader_workers: int = 0,
        resize: str = "stretch",
        seed: int = 0,
    ):
        super().__init__()
        for name, value in (
            ("channels", channels),
            ("image_size", image_size),
            ("batch_size", batch_size),
            ("steps_per_epoch", steps_per_epoch),
            ("eval_batch_size", eval_batch_size),
            ("eval_pairs", eval_pairs),
        ):
            if value < 1:
                raise ValueError(f"{name} must be > 0, got {value}")
        if images_per_step is not None and images_per_step < 1:
            raise ValueError(f"images_per_step must be > 0 or null, got {images_per_step}")
        if split_by not in ("classes", "samples"):
            raise ValueError(f"split_by must be 'classes' or 'samples', got {split_by!r}")
        if folds is not None and folds < 2:
            raise ValueError(f"folds must be >= 2, or null for no folds, got {folds}")
        if folds is not None and split_by != "classes":
            raise ValueError(
                f"folds must be null with split_by={split_by!r} (folds divide classes): set "
                "split_by=classes or folds=null"
            )
        if folds is None and fold != 0:  # a fold asked for without folds would silently be val
            raise ValueError(f"fold must be 0 while folds is null, got {fold}: set folds=k too")
        if folds is not None and not 0 <= fold < folds:
            raise ValueError(f"fold must be in 0..{folds - 1} (folds={folds}), got {fold}")
        self.source, self.make_sampler = source, sampler
        self.channels, self.image_size = channels, image_size
        self._batch_size, self.images_per_step = batch_size, images_per_step
        self.batch_size = (
            batch_size  # in tuples; set from images_per_step once the sampler is known
        )
        self.steps_per_epoch = steps_per_epoch
        self.eval_batch_size, self.eval_pairs = eval_batch_size, eval_pairs
        self.split = dict(split or {"train": 0.6, "val": 0.2, "test": 0.2})
        self.split_by, self.split_seed = split_by, split_seed
        self.folds, self.fold = folds, fold
        self.loader_workers = loader_workers
        self.resize = resize  # how image files become this data's images (verify/search decode so)
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.splits: dict[str, ImageSet] = {}
        self.pairs: dict[str, Tensor] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        data = self.source()
        expected = (self.channels, self.image_size, self.image_size)
        if tuple(data.images.shape[1:]) != expected:
            raise ValueError(
                f"data.channels/data.image_size say images are {expected}, the source "
                f"gives {tuple(data.images.shape[1:])}"
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
        if self.make_sampler is not None:  # evaluation-only use needs none
            train = self.splits["train"]
            self.sampler = self.make_sampler(
                labels=train.labels, generator=self.generator, class_names=train.class_names
            )
            self._set_batch_size()
            try:  # before training, not at its first step
                self.sampler.check_batch_size(self.batch_size)
            except ValueError as err:
                if self.images_per_step is None:
                    raise
                raise ValueError(
                    f"data.images_per_step={self.images_per_step} gives {err}"
                ) from None
        # fixed by the split seed, not the run's seed: every run is scored on the same pairs
        for i, s in enumerate(SPLITS[1:], start=1):
            g = torch.Generator().manual_seed(self.split_seed + 1000 * i)
            self.pairs[s] = PairSampler(self.splits[s].labels, g).sample(self.eval_pairs)

    def _set_batch_size(self) -> None:
        """Tuples per step: data.batch_size, or data.images_per_step shared out into tuples so
        that methods with different tuple sizes see the same number of images per step."""
        if self.images_per_step is None:
            self.batch_size = self._batch_size
            return
        size = self.sampler.tuple_size
        if self.images_per_step % size:
            raise ValueError(
                f"data.images_per_step={self.images_per_step} is not a multiple of the sampler's "
                f"tuple size {size}: choose a multiple of 6 to compare pairs with triplets"
            )
        self.batch_size = self.images_per_step // size

    @property
    def tuple_size(self) -> int:
        return self.sampler.tuple_size

    @property
    def num_train_classes(self) -> int:
        return len(self.splits["train"].class_names)

    def pixel_stats(self) -> tuple[Tensor, Tensor]:
        """Per-channel mean and std of the training images (in [0, 1])."""
        return pixel_stats(self.splits["train"].images)

    def train_dataloader(self) -> DataLoader:
        batches = SampledBatches(self.sampler, self.batch_size, self.steps_per_epoch, self.seed)
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
        if self.make_sampler is not None:
            self.sampler.to(self.generator)
