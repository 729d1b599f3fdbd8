"""Index batches drawn in the main process, gathered in DataLoader workers.

    DataLoader(GatherBatches(split), sampler=DrawnBatches(sampler, batch_size, steps),
               batch_size=None, num_workers=k)

`DrawnBatches` calls the seeded sampler in the main process, so the drawn indices (and the
generator's state) do not depend on `num_workers`; each key goes to a worker, which gathers it
from the split's images (a tensor, or `LazyImages` that decodes just those files). The DataLoader
delivers batches in order, so the same seed gives the same batches in memory and streaming, with
any number of workers. The sampler runs up to `prefetch_factor * num_workers` batches ahead of
training, which matters only for a checkpoint taken in the middle of an epoch.
"""

from collections.abc import Iterator

from torch import Tensor
from torch.utils.data import Dataset, Sampler

from siamese.data.imageset import ImageSet


class DrawnBatches(Sampler):
    def __init__(self, sampler, batch_size: int, steps: int):
        self.sampler, self.batch_size, self.steps = sampler, batch_size, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Tensor]:
        for _ in range(self.steps):
            yield self.sampler.sample(self.batch_size)


class GatherBatches(Dataset):
    """`dataset[index]` for a (B, T) index tensor: {"images": (B, T, C, H, W) uint8,
    "labels": (B, T) int64}."""

    def __init__(self, data: ImageSet):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: Tensor) -> dict[str, Tensor]:
        return {"images": self.data.images[index], "labels": self.data.labels[index]}
