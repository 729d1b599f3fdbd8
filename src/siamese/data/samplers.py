"""Samplers that draw a whole batch of index tuples at once from a seeded torch.Generator.

Each returns a (B, T) index tensor into the split's images: T = 2 (pairs), 3 (triplets) or
1 (P×K batches for in-batch mining). Their only state is the generator, so saving and restoring it
replays the exact same batches. A sampler is configured from the config and bound to a split's
labels when the data is set up. Indices are drawn on the generator's device (`to` moves a sampler's
tables there), so a split held on a GPU is sampled and gathered without the host.
"""

import torch
from torch import Tensor

from siamese.core.errors import ArgumentError, DataError, at_least, in_range


class ClassIndex:
    """Samples grouped by class, for vectorised draws of 'another sample of this class'."""

    def __init__(self, labels: Tensor, class_names: list[str] | None = None) -> None:
        self.order = torch.argsort(labels, stable=True)
        self.counts = torch.bincount(labels)
        self.offsets = torch.cumsum(self.counts, 0) - self.counts
        self.position = torch.empty_like(self.order)
        self.position[self.order] = torch.arange(labels.numel())  # rank of each sample in `order`
        self.labels = labels
        self.widest = int(self.counts.max())
        if (self.counts < 2).any():
            small = torch.nonzero(self.counts < 2).flatten().tolist()
            named = [class_names[i] if class_names else f"class id {i}" for i in small]
            raise DataError(
                f"classes {named} have fewer than 2 samples in this split: no positive pair "
                "possible; give them at least 2 images or remove them"
            )
        if self.counts.numel() < 2:
            raise DataError("a split needs at least 2 classes to draw negatives")

    @property
    def num_classes(self) -> int:
        return self.counts.numel()

    def to(self, device: torch.device) -> "ClassIndex":
        for name in ("order", "counts", "offsets", "position", "labels"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def positives(self, anchors: Tensor, g: torch.Generator) -> Tensor:
        """Another sample of each anchor's class (never the anchor itself)."""
        cls = self.labels[anchors]
        within = self.position[anchors] - self.offsets[cls]
        r = (
            torch.rand(anchors.shape, generator=g, device=g.device) * (self.counts[cls] - 1)
        ).long()
        r = r + (r >= within).long()  # skip the anchor's own slot
        return self.order[self.offsets[cls] + r]

    def negatives(self, anchors: Tensor, g: torch.Generator) -> Tensor:
        """A sample of a class other than each anchor's, classes drawn uniformly."""
        cls = self.labels[anchors]
        other = torch.randint(self.num_classes - 1, anchors.shape, generator=g, device=g.device)
        other = other + (other >= cls).long()
        return self.members(other, g)

    def members(self, classes: Tensor, g: torch.Generator) -> Tensor:
        r = (torch.rand(classes.shape, generator=g, device=g.device) * self.counts[classes]).long()
        return self.order[self.offsets[classes] + r]


class Sampler:
    """A sampler is configured first (`sampler=` in the config; its constructor checks its own
    options) and bound to a split's labels and a generator when the data is set up."""

    tuple_size: int
    index: ClassIndex
    generator: torch.Generator

    def bind(
        self, labels: Tensor, generator: torch.Generator, class_names: list[str] | None = None
    ) -> "Sampler":
        """Draw from these labels with this generator from here on; returns the sampler."""
        self.index = ClassIndex(labels, class_names)
        self.generator = generator
        return self

    def to(self, generator: torch.Generator) -> None:
        """Draw from `generator` (on the device where the split now lives) from here on."""
        self.generator = generator
        self.index.to(generator.device)

    def check_batch_size(self, batch_size: int) -> None:
        """Raises ArgumentError when `batch_size` tuples cannot be drawn from the bound split."""
        at_least("batch_size", batch_size, 1)

    def sample(self, batch_size: int) -> Tensor:
        raise NotImplementedError


class PairSampler(Sampler):
    """(x1, x2) pairs: a fraction `positive_fraction` of same-class pairs, the rest different-class."""

    tuple_size = 2

    def __init__(self, positive_fraction: float = 0.5):
        self.positive_fraction = in_range(
            "positive_fraction", positive_fraction, 0, 1, closed=False
        )

    def sample(self, batch_size: int) -> Tensor:
        g = self.generator
        anchors = torch.randint(
            self.index.labels.numel(), (batch_size,), generator=g, device=g.device
        )
        same = torch.rand(batch_size, generator=g, device=g.device) < self.positive_fraction
        second = torch.where(
            same, self.index.positives(anchors, g), self.index.negatives(anchors, g)
        )
        return torch.stack([anchors, second], 1)


class TripletSampler(Sampler):
    """(anchor, positive, negative): a positive of the anchor's class and a negative of another."""

    tuple_size = 3

    def sample(self, batch_size: int) -> Tensor:
        g = self.generator
        anchors = torch.randint(
            self.index.labels.numel(), (batch_size,), generator=g, device=g.device
        )
        return torch.stack(
            [anchors, self.index.positives(anchors, g), self.index.negatives(anchors, g)], 1
        )


class PKSampler(Sampler):
    """Class-balanced batches for online mining: P classes × K samples each (batch size P·K).
    A split with fewer than P classes gives each class several groups of K in a batch (every
    class once before any twice), so a batch size fits whatever the number of classes."""

    tuple_size = 1

    def __init__(self, samples_per_class: int = 4):
        self.samples_per_class = at_least("samples_per_class", samples_per_class, 2)

    def sample(self, batch_size: int) -> Tensor:
        self.check_batch_size(batch_size)
        k = self.samples_per_class
        p = batch_size // k
        g = self.generator
        n = self.index.num_classes
        rounds = -(-p // n)  # more than one where the split has fewer than P classes
        classes = torch.cat(
            [torch.randperm(n, generator=g, device=g.device) for _ in range(rounds)]
        )
        classes = classes[:p]
        counts = self.index.counts[classes]
        # K distinct samples per class (with replacement only where a class has fewer than K);
        # the widest class, known at set-up, bounds the keys without reading counts on the host
        keys = torch.rand(p, max(self.index.widest, k), generator=g, device=g.device)
        keys[torch.arange(keys.shape[1], device=g.device) >= counts[:, None]] = 2.0
        picks = keys.argsort(1)[:, :k]
        picks = torch.where(picks < counts[:, None], picks, picks % counts[:, None])
        return self.index.order[self.index.offsets[classes, None] + picks].reshape(-1, 1)

    def check_batch_size(self, batch_size: int) -> None:
        k = self.samples_per_class
        p = batch_size // k
        if p < 2 or p * k != batch_size:
            raise ArgumentError(
                "batch_size",
                f"={batch_size} must be a multiple of the sampler's samples_per_class="
                f"{k} with at least 2 classes per batch",
            )
