"""Batches: index tuples drawn by a sampler become whole image batches, gathered with one indexing
operation, resumable mid-epoch; a split in order for evaluation; the splits moved onto the run's
device once, so that no training step gathers on the host."""

from collections.abc import Callable, Iterator

from pytorch_lightning.callbacks import Callback
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from siamese.data.imageset import ImageSet

Batch = dict[str, Tensor]  # {"images": (B, T, C, H, W) uint8, "labels": (B, T) int64}


class SampledBatches(Sampler):
    """`steps` index tensors (B, T) per epoch, drawn in the main process from the sampler's
    generator, so that the batches are the same whichever process gathers them.

    Resumable mid-epoch: its state is the number of batches the model consumed; restored, it
    re-seeds the generator with `seed` and replays (draws and drops) that many batches' indices,
    which costs no gathering. So a resumed run sees the batches an uninterrupted one would, on
    whichever device the generator lives and on every DDP rank (each has its own seed). Loaders
    draw ahead of the model (Lightning prefetches a batch, workers more), so the generator's
    current state would not do."""

    def __init__(self, sampler, batch_size: int, steps: int, seed: int):
        self.sampler, self.batch_size, self.steps, self.seed = sampler, batch_size, steps, seed
        self._epochs = 0  # iterations started
        self._replay: int | None = None

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Tensor]:
        skip = 0
        if self._replay is not None:
            self.sampler.generator.manual_seed(self.seed)
            for _ in range(self._replay):
                self.sampler.sample(self.batch_size)
            self._epochs, skip = divmod(self._replay, self.steps)
            self._replay = None
        self._epochs += 1
        for _ in range(self.steps - skip):
            yield self.sampler.sample(self.batch_size)

    def state_dict(self, consumed: int) -> dict:
        """`consumed`: batches the model took in the current epoch (all of them at its end)."""
        done = max(self._epochs - 1, 0) * self.steps + min(consumed, self.steps)
        return {"batches": done}

    def load_state_dict(self, state: dict) -> None:
        self._replay = int(state["batches"])


class TrainLoader(DataLoader):
    """The training DataLoader, stateful for Lightning: a checkpoint carries where the epoch's
    batches stand, so a run resumed mid-epoch sees the batches an uninterrupted one would."""

    def __init__(
        self,
        data: ImageSet,
        batches: SampledBatches,
        consumed: Callable[[], int],
        num_workers: int = 0,
    ):
        super().__init__(
            GatherBatch(data),
            sampler=batches,
            batch_size=None,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
        )
        self.batches, self.consumed = batches, consumed

    def state_dict(self) -> dict:
        return self.batches.state_dict(self.consumed())

    def load_state_dict(self, state: dict) -> None:
        self.batches.load_state_dict(state)


class GatherBatch(Dataset):
    """A whole batch from a (B, T) index tensor, with one indexing operation."""

    def __init__(self, data: ImageSet):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx: Tensor) -> Batch:
        return {"images": self.data.images[idx], "labels": self.data.labels[idx]}


class SplitBatches(Dataset):
    """A whole split in order, batch i its i-th slice, for embedding it once per evaluation (a
    map-style data set of batches: its length is exact, which Lightning needs to know)."""

    def __init__(self, data: ImageSet, batch_size: int):
        self.data, self.batch_size = data, batch_size

    def __len__(self) -> int:
        return -(-len(self.data) // self.batch_size)

    def __getitem__(self, i: int) -> Batch:
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} of {len(self)}")
        sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return {"images": self.data.images[sl, None], "labels": self.data.labels[sl, None]}


class DataOnDevice(Callback):
    """Moves the data module's splits and sampling to the run's device once, at set-up."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if trainer.datamodule is not None:
            trainer.datamodule.place(trainer.strategy.root_device)
