"""The embedded data set, the class split and the samplers."""

import pytest
import torch

from siamese.data.datamodule import SiameseDataModule
from siamese.data.samplers import PairSampler, PKSampler, TripletSampler
from siamese.data.sources.synthetic import SyntheticGlyphs
from siamese.data.splits import split_indices
from tests.helpers import SPLIT

SMALL = SyntheticGlyphs(num_classes=12, samples_per_class=6)


def make_datamodule(sampler=PairSampler, seed=0, **kwargs) -> SiameseDataModule:
    kwargs.setdefault("split", SPLIT)
    kwargs.setdefault("steps_per_epoch", 100)
    dm = SiameseDataModule(
        source=SMALL,
        sampler=sampler(),
        batch_size=8,
        eval_pairs=50,
        seed=seed,
        image_size=16,
        **kwargs,
    )
    dm.setup()
    return dm


def test_synthetic_data_is_deterministic_uint8_and_seeded():
    a, b = SMALL(image_size=16), SMALL(image_size=16)
    assert a.images.dtype == torch.uint8 and a.images.shape == (72, 3, 16, 16)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    other = SyntheticGlyphs(num_classes=12, samples_per_class=6, seed=1)(image_size=16)
    assert not torch.equal(a.images, other.images)
    assert torch.bincount(a.labels).tolist() == [6] * 12


def test_samples_of_a_class_differ_but_resemble_each_other():
    data = SyntheticGlyphs(num_classes=10, samples_per_class=10)(image_size=24)
    x = data.images.float().flatten(1)
    assert not torch.equal(x[0], x[1])  # distorted, not copies
    d = torch.cdist(x, x)
    same = data.labels[:, None] == data.labels[None]
    off_diag = ~torch.eye(len(x), dtype=torch.bool)
    assert d[same & off_diag].mean() < d[~same].mean()


def test_pair_sampler_labels_match_what_pairs_claim():
    labels = SMALL(image_size=16).labels
    sampler = PairSampler(positive_fraction=0.3).bind(labels, torch.Generator().manual_seed(0))
    pairs = sampler.sample(4000)
    same = labels[pairs[:, 0]] == labels[pairs[:, 1]]
    assert (pairs[:, 0] != pairs[:, 1]).all()  # a positive is never the anchor itself
    assert abs(same.float().mean().item() - 0.3) < 0.03


def test_triplet_sampler_gives_anchor_positive_negative():
    labels = SMALL(image_size=16).labels
    t = TripletSampler().bind(labels, torch.Generator().manual_seed(0)).sample(2000)
    assert (labels[t[:, 0]] == labels[t[:, 1]]).all()
    assert (t[:, 0] != t[:, 1]).all()
    assert (labels[t[:, 0]] != labels[t[:, 2]]).all()
    assert set(labels[t[:, 2]].tolist()) == set(labels.tolist())  # every class is drawn as negative


def test_pk_sampler_gives_p_classes_of_k_distinct_samples():
    labels = SMALL(image_size=16).labels
    idx = PKSampler(samples_per_class=3).bind(labels, torch.Generator().manual_seed(0)).sample(12)
    assert idx.shape == (12, 1)
    per_class = labels[idx[:, 0]].view(4, 3)
    assert (per_class == per_class[:, :1]).all() and per_class[:, 0].unique().numel() == 4
    assert idx.unique().numel() == 12
    with pytest.raises(ValueError, match="^batch_size=10 must be a multiple"):
        PKSampler(samples_per_class=3).bind(labels, torch.Generator()).sample(10)


def test_a_restored_loader_continues_with_the_batches_of_an_uninterrupted_one():
    # the whole run's batches, 3 epochs of 3 steps, without interruption
    whole = make_datamodule(TripletSampler, steps_per_epoch=3)
    loader = whole.train_dataloader()
    expected = [b["images"] for _ in range(3) for b in loader]
    for stopped_after in (1, 3, 4, 8):  # mid-epoch, at an epoch's end, in the second, the third
        dm = make_datamodule(TripletSampler, steps_per_epoch=3)
        loader = dm.train_dataloader()
        epochs, consumed = divmod(stopped_after, 3)
        for _ in range(epochs):
            list(loader)
        if consumed:  # mid-epoch; a loader draws ahead of what the model consumed
            it = iter(loader)
            for _ in range(consumed + 1):
                next(it)
        # Lightning's count: batches of this epoch, all of them at an epoch's end
        loader.consumed = lambda c=consumed: c or 3
        state = loader.state_dict()
        resumed = make_datamodule(TripletSampler, steps_per_epoch=3).train_dataloader()
        resumed.load_state_dict(state)
        rest = [b["images"] for _ in range(3 - epochs) for b in resumed]
        assert len(rest) == 9 - stopped_after, stopped_after
        assert all(torch.equal(a, b) for a, b in zip(expected[stopped_after:], rest, strict=True))


def test_batches_are_uint8_tuples_with_their_labels():
    dm = make_datamodule(TripletSampler)
    batch = next(iter(dm.train_dataloader()))
    assert batch["images"].shape == (8, 3, 3, 16, 16) and batch["images"].dtype == torch.uint8
    assert batch["labels"].shape == (8, 3)
    assert (batch["labels"][:, 0] == batch["labels"][:, 1]).all()


def test_class_split_is_open_set_and_fixed_by_the_split_seed():
    a, b = make_datamodule(seed=0), make_datamodule(seed=1)  # run seeds differ
    names = {s: set(a.splits[s].class_names) for s in ("train", "val", "test")}
    assert not names["train"] & names["test"] and not names["train"] & names["val"]
    assert not names["val"] & names["test"]
    for s in ("val", "test"):
        assert torch.equal(a.pairs[s], b.pairs[s])
        assert torch.equal(a.splits[s].images, b.splits[s].images)
    # labels of each split are renumbered from 0 (the sdrn discriminator indexes them)
    assert a.splits["train"].labels.max() + 1 == len(names["train"])


def test_sample_split_keeps_every_class_everywhere():
    labels = SMALL(image_size=16).labels
    index = split_indices(labels, {"train": 0.5, "val": 0.25, "test": 0.25}, "samples", 0)
    for part in index.values():
        assert labels[part].unique().numel() == 12
    assert torch.cat(list(index.values())).sort().values.tolist() == list(range(72))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": {"train": 0.5, "val": 0.2, "test": 0.2}}, "sum to 1"),
        ({"split": {"train": 0.05, "val": 0.5, "test": 0.45}}, "at least 2"),
        ({"split_by": "rows"}, r"split_by must be one of \['classes', 'samples'\], got 'rows'"),
    ],
)
def test_bad_split_names_the_key(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_datamodule(**kwargs)


def test_pk_batches_are_whole_when_every_class_is_smaller_than_k():
    labels = torch.arange(8).repeat_interleave(3)  # 3 samples a class, K = 4: drawn with repeats
    idx = PKSampler(samples_per_class=4).bind(labels, torch.Generator().manual_seed(0)).sample(16)
    assert idx.shape == (16, 1)
    per_class = labels[idx[:, 0]].view(4, 4)
    assert (per_class == per_class[:, :1]).all()
