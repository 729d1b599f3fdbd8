"""Bring your own data: decoding, folder and manifest sources, the decode cache, streaming,
torchvision roots faked on disk, augmentation and pretrained weights. All offline, seconds."""

import logging
import os
import pickle
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from siamese.core.errors import ArgumentError
from siamese.data.images import ALPHA_BACKGROUND, ImageDecodeError, load_image
from siamese.data.imageset import SPLIT_CODES, ImageSet
from siamese.data.lazy import LazyImages
from siamese.data.samplers import ClassIndex, PairSampler
from siamese.data.sources.folder import ImageFolder
from siamese.data.sources.manifest import CSVManifest
from siamese.data.sources.synthetic import SyntheticGlyphs
from siamese.data.sources.torchvision_sets import TorchvisionDataset
from siamese.data.splits import split_indices
from siamese.models.normalization import BatchNorm, GroupNorm
from tests.helpers import SPLIT, augmentation, fake_mnist, pil, write_glyph_folder


@pytest.fixture(scope="module")
def glyphs() -> ImageSet:
    return SyntheticGlyphs(num_classes=6, samples_per_class=5)(image_size=16)


@pytest.fixture
def messy(tmp_path, glyphs):
    """Glyphs as PNG and JPEG of mixed sizes and modes, plus the usual bad data."""
    root = tmp_path / "messy"
    for i, (image, label) in enumerate(zip(glyphs.images, glyphs.labels.tolist(), strict=True)):
        folder = root / glyphs.class_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        img = pil(image)
        kind = i % 5
        if kind == 0:
            img.resize((40, 24)).save(folder / f"{i:04d}.jpg", quality=90)
        elif kind == 1:
            img.convert("L").save(folder / f"{i:04d}.png")
        elif kind == 2:
            img.convert("P").save(folder / f"{i:04d}.gif")
        elif kind == 3:
            img.convert("RGBA").resize((20, 20)).save(folder / f"{i:04d}.webp")
        else:
            img.save(folder / f"{i:04d}.bmp")
    (root / "glyph000" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    good = sorted((root / "glyph001").glob("*.png"))[0].read_bytes()
    (root / "glyph001" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "lonely").mkdir()
    pil(glyphs.images[0]).save(root / "lonely" / "only.png")
    (root / "empty").mkdir()
    (root / "glyph002" / "notes.txt").write_text("not an image")
    (root / "README.txt").write_text("not a class")
    return root


# --- decoding -------------------------------------------------------------------------------


def test_load_image_modes_alpha_and_16_bit(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "rgb.tif")
    assert load_image(tmp_path / "rgb.tif", 3, 8)[0].unique().tolist() == [200]
    # fully transparent pixels become the documented background, opaque ones keep their colour
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4, :, :3], rgba[:4, :, 3] = 10, 255
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    out = load_image(tmp_path / "alpha.png", 3, 8)
    assert out[:, :4].unique().tolist() == [10]
    assert out[:, 4:].flatten(1).unique(dim=1).flatten().tolist() == list(ALPHA_BACKGROUND)
    # 16-bit grey is scaled to 8 bits, not clipped
    grey16 = np.full((8, 8), 257 * 100, np.uint16)
    Image.fromarray(grey16).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png", 1, 8).unique().tolist() == [100]
    # a palette image decodes like its RGB original
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "pal.png")
    assert torch.equal(
        load_image(tmp_path / "pal.png", 3, 8), load_image(tmp_path / "rgb.tif", 3, 8)
    )
    assert load_image(tmp_path / "pal.png", 1, 8).shape == (1, 8, 8)


def test_resize_crop_keeps_the_centre(tmp_path):
    wide = np.zeros((16, 32, 3), np.uint8)
    wide[:, :8], wide[:, 8:24, 1], wide[:, 24:] = 255, 255, 255  # white | green | white
    Image.fromarray(wide).save(tmp_path / "wide.png")
    crop = load_image(tmp_path / "wide.png", 3, 8, resize="crop")
    assert crop[1].min() == 255 and crop[0].max() <= 1  # only the green middle is left
    stretch = load_image(tmp_path / "wide.png", 3, 8, resize="stretch")
    assert stretch[0, :, 0].min() == 255  # the white edges survive a stretch


def test_unreadable_images_name_the_file(tmp_path, messy):
    for name in ("glyph000/corrupt.png", "glyph001/truncated.png", "missing.png"):
        with pytest.raises(ImageDecodeError, match=name.split("/")[-1]):
            load_image(messy / name, 3, 16)


# --- folder source --------------------------------------------------------------------------


def test_folder_is_lossless(tmp_path, glyphs):
    write_glyph_folder(glyphs, tmp_path / "png")
    data = ImageFolder(tmp_path / "png", num_workers=2)(image_size=16, channels=3)
    assert data.class_names == glyphs.class_names
    assert torch.equal(data.labels, glyphs.labels)
    assert torch.equal(data.images, glyphs.images)
    assert data.split is None


def test_folder_bad_data(messy, caplog):
    with pytest.raises(ValueError, match=r"(?s)2 unreadable.*corrupt\.png.*truncated\.png"):
        ImageFolder(messy, cache=False)(image_size=16)
    source = ImageFolder(messy, skip_bad=True, num_workers=2)
    with caplog.at_level(logging.INFO):
        data = source(image_size=16)
    assert source.stats["bad"] == 2
    assert "lonely" in caplog.text and "fewer than 2 images" in caplog.text
    assert source.stats["left_out_classes"] == ["lonely"]
    assert "empty class folder(s)" in caplog.text and "['empty']" in caplog.text
    assert source.stats["empty_classes"] == ["empty"]
    assert source.stats["ignored_files"] == 2  # notes.txt and README.txt
    assert data.class_names == [f"glyph{i:03d}" for i in range(6)]
    assert len(data) == 30 and data.images.shape == (30, 3, 16, 16)
    # streaming leaves out the same files and gathers the same images
    lazy = ImageFolder(messy, skip_bad=True, max_memory_gb=1e-6)(image_size=16)
    assert isinstance(lazy.images, LazyImages) and len(lazy.images) == 30
    assert torch.equal(lazy.images[torch.arange(30)], data.images)


def test_folder_root_errors(tmp_path, glyphs):
    with pytest.raises(ArgumentError, match="^root='.*nowhere' does not exist"):
        ImageFolder(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArgumentError, match="^root='.*file' is a file"):
        ImageFolder(tmp_path / "file")
    (tmp_path / "bare").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        ImageFolder(tmp_path / "bare")(image_size=32)
    one = tmp_path / "one"
    write_glyph_folder(glyphs.subset(torch.arange(5)), one)
    with pytest.raises(ValueError, match=r"1 usable class\(es\) \['glyph000'\]"):
        ImageFolder(one)(image_size=16)


def test_decode_cache_hit_and_invalidation(tmp_path, glyphs):
    root = tmp_path / "png"
    write_glyph_folder(glyphs, root)
    first = ImageFolder(root)
    a = first(image_size=16)
    assert (
        not first.stats["from_cache"]
        and first.stats["cache_file"].parent == root / ".siamese-cache"
    )
    second = ImageFolder(root)
    b = second(image_size=16)
    assert second.stats["from_cache"] and torch.equal(a.images, b.images)
    # other options are another cache entry
    other = ImageFolder(root)
    other(image_size=8)
    assert not other.stats["from_cache"]
    # a changed file invalidates it, and the stale entry is replaced
    changed = root / "glyph003" / "0017.png"
    pil(255 - glyphs.images[17]).save(changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = ImageFolder(root)
    c = third(image_size=16)
    assert not third.stats["from_cache"]
    assert torch.equal(c.images[17], 255 - glyphs.images[17])
    assert len(list((root / ".siamese-cache").glob("folder-16px-*.pt"))) == 1
    assert not list((root / ".siamese-cache").glob("*.tmp"))


def test_cache_goes_to_the_cache_folder_when_the_data_folder_is_not_writable(
    tmp_path, glyphs, monkeypatch
):
    root = tmp_path / "png"
    write_glyph_folder(glyphs, root)
    (root / ".siamese-cache").write_text("a file where the cache folder would go")
    monkeypatch.setenv("SIAMESE_CACHE", str(tmp_path / "cache"))
    source = ImageFolder(root)
    source(image_size=16)
    assert (tmp_path / "cache" / "decoded") in source.stats["cache_file"].parents
    again = ImageFolder(root)
    again(image_size=16)
    assert again.stats["from_cache"]


# --- manifest source ------------------------------------------------------------------------


def write_manifest(tmp_path, glyphs, rows=None, header="path,label,split"):
    write_glyph_folder(glyphs, tmp_path / "img")
    if rows is None:
        rows = []
        for i, label in enumerate(glyphs.labels.tolist()):
            split = "train" if label < 3 else ("val" if label < 5 else "test")
            split = split if label != 5 else "test"
            rows.append(
                f"img/{glyphs.class_names[label]}/{i:04d}.png,{glyphs.class_names[label]},{split}"
            )
    path = tmp_path / "m.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_manifest_with_given_split(tmp_path, glyphs):
    rows = []
    for i, label in enumerate(glyphs.labels.tolist()):
        split = ["train", "train", "val", "val", "test", "test"][label]
        rows.append(
            f"img/{glyphs.class_names[label]}/{i:04d}.png,{glyphs.class_names[label]},{split}"
        )
    data = CSVManifest(write_manifest(tmp_path, glyphs, rows))(image_size=16)
    assert torch.equal(data.images, glyphs.images) and data.class_names == glyphs.class_names
    index = split_indices(
        data.labels, {"train": 0.6, "val": 0.2, "test": 0.2}, "classes", 0, given=data.split
    )
    assert data.labels[index["test"]].unique().tolist() == [4, 5]
    assert data.labels[index["val"]].unique().tolist() == [2, 3]


def test_manifest_errors_name_the_line(tmp_path, glyphs):
    path = write_manifest(tmp_path, glyphs, ["img/glyph000/0000.png,glyph000"], header="file,label")
    with pytest.raises(ValueError, match=r"line 1.*lacks column\(s\) \['path'\]"):
        CSVManifest(path)(image_size=32)
    rows = ["img/glyph000/0000.png,glyph000,train", "img/glyph000/0001.png,glyph000,holdout"]
    with pytest.raises(ValueError, match="line 3: unknown split 'holdout'"):
        CSVManifest(write_manifest(tmp_path, glyphs, rows))(image_size=32)
    rows = ["img/glyph000/0000.png,glyph000,", "img/nope.png,glyph000,"]
    with pytest.raises(FileNotFoundError, match=r"m.csv, line 3: .*nope\.png"):
        CSVManifest(write_manifest(tmp_path, glyphs, rows))(image_size=32)
    # a given split with a single class
    rows = [
        f"img/{glyphs.class_names[y]}/{i:04d}.png,{glyphs.class_names[y]},{'test' if y == 0 else ''}"
        for i, y in enumerate(glyphs.labels.tolist())
    ]
    with pytest.raises(ValueError, match=r"split 'test' is given 1 class \['glyph000'\]"):
        CSVManifest(write_manifest(tmp_path, glyphs, rows))(image_size=16)
    data = ImageSet(
        glyphs.images, glyphs.labels, glyphs.class_names, torch.where(glyphs.labels == 0, 2, -1)
    )
    with pytest.raises(ValueError, match=r"split 'test' has 1 class\(es\) \['glyph000'\]"):
        split_indices(
            data.labels,
            {"train": 0.6, "val": 0.2, "test": 0.2},
            "classes",
            0,
            given=data.split,
            class_names=data.class_names,
        )


def test_partly_given_split_draws_the_rest(glyphs):
    given = torch.where(glyphs.labels >= 4, SPLIT_CODES["test"], -1)
    index = split_indices(
        glyphs.labels, {"train": 0.6, "val": 0.2, "test": 0.2}, "classes", 0, given=given
    )
    assert set(glyphs.labels[index["test"]].tolist()) == {4, 5}
    train, val = (
        set(glyphs.labels[index["train"]].tolist()),
        set(glyphs.labels[index["val"]].tolist()),
    )
    assert train | val == {0, 1, 2, 3} and not train & val and len(val) == 2
    # no given split: the same split as before this option existed
    old = split_indices(glyphs.labels, {"train": 0.5, "val": 0.25, "test": 0.25}, "classes", 3)
    new = split_indices(
        glyphs.labels,
        {"train": 0.5, "val": 0.25, "test": 0.25},
        "classes",
        3,
        given=torch.full_like(glyphs.labels, -1),
    )
    assert all(torch.equal(old[s], new[s]) for s in old)


def test_sampler_error_names_the_class():
    labels = torch.tensor([0, 0, 1, 2, 2])
    with pytest.raises(ValueError, match=r"\['bob'\] have fewer than 2"):
        ClassIndex(labels, ["alice", "bob", "carol"])


# --- streaming ------------------------------------------------------------------------------


def test_streaming_gathers_the_same_batches(tmp_path, glyphs):
    root = tmp_path / "png"
    write_glyph_folder(glyphs, root)
    memory = ImageFolder(root)(image_size=16)
    source = ImageFolder(root, max_memory_gb=1e-6)
    lazy = source(image_size=16)
    assert source.stats["streaming"] and isinstance(lazy.images, LazyImages)
    assert lazy.images.shape == memory.images.shape and torch.equal(lazy.labels, memory.labels)
    idx = PairSampler().bind(memory.labels, torch.Generator().manual_seed(0)).sample(16)
    assert torch.equal(lazy.images[idx], memory.images[idx])
    assert torch.equal(lazy.images[2:7, None], memory.images[2:7, None])
    part = torch.tensor([3, 9, 20, 21])
    assert torch.equal(lazy.subset(part).images[torch.arange(4)], memory.subset(part).images)
    # what DataLoader workers receive: names only, no decoded data
    clone = pickle.loads(pickle.dumps(lazy.images))
    assert len(pickle.dumps(lazy.images)) < 10_000 and torch.equal(clone[idx], memory.images[idx])
    threaded = LazyImages(lazy.images.files, 3, 16, threads=2)
    assert torch.equal(threaded[idx], memory.images[idx])


# --- torchvision ----------------------------------------------------------------------------


def test_torchvision_mnist_from_a_fake_root(tmp_path):
    arrays = fake_mnist(tmp_path)
    data = TorchvisionDataset("MNIST", tmp_path, download=False)(image_size=28, channels=1)
    x = np.concatenate([arrays["train"][0], arrays["t10k"][0]])
    assert torch.equal(data.images[:, 0], torch.from_numpy(x))
    assert data.labels.tolist() == (np.arange(20) % 10).tolist() + (np.arange(10) % 10).tolist()
    assert data.class_names[0] == "0 - zero" and data.split is None
    official = TorchvisionDataset("MNIST", tmp_path, download=False, official_split=True)(
        image_size=16, channels=3
    )
    assert official.images.shape == (30, 3, 16, 16)
    assert official.split.tolist() == [-1] * 20 + [SPLIT_CODES["test"]] * 10


def test_torchvision_cifar10_from_a_fake_root(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    g = np.random.default_rng(1)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = g.integers(0, 256, (4, 3 * 32 * 32)).astype(np.uint8)
        batches[name] = x
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": x, "labels": [0, 1, 2, 3]}, fh)
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": names}, fh)
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)  # md5 of the real files
    data = TorchvisionDataset("CIFAR10", tmp_path, download=False)(image_size=32, channels=3)
    assert data.class_names == names and len(data) == 24
    assert torch.equal(data.images[0], torch.from_numpy(batches["data_batch_1"][0]).view(3, 32, 32))


def test_torchvision_omniglot_protocol(tmp_path, glyphs):
    base = tmp_path / "omniglot-py"
    for folder, alphabet in (("images_background", "Latin"), ("images_evaluation", "Greek")):
        for c in range(3):
            d = base / folder / alphabet / f"character{c + 1:02d}"
            d.mkdir(parents=True)
            for k in range(2):
                pil(glyphs.images[5 * c + k]).convert("1").save(d / f"{c}_{k}.png")
    data = TorchvisionDataset("Omniglot", tmp_path, download=False)(image_size=16, channels=1)
    assert data.class_names[0] == "Greek/character01" and len(data) == 12
    test = data.split == SPLIT_CODES["test"]
    assert {data.class_names[i] for i in data.labels[test].tolist()} == {
        f"Greek/character{c:02d}" for c in (1, 2, 3)
    }
    assert bool((data.split[~test] == -1).all())


def test_torchvision_missing_files_fail_fast_and_name_them(tmp_path):
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=r"(?s)data.download=false.*MNIST/raw/train-images"):
        TorchvisionDataset("MNIST", tmp_path / "empty", download=False)(image_size=32)
    assert time.perf_counter() - start < 2


def test_torchvision_offline_download_fails_fast_and_leaves_nothing(tmp_path, monkeypatch):
    def unreachable(self, address):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket.socket, "connect", unreachable)
    root = tmp_path / "cache"
    root.mkdir()
    (root / "keep.txt").write_text("was here before")
    start = time.perf_counter()
    with pytest.raises(
        RuntimeError, match=r"(?s)download failed.*MNIST/raw/train-images-idx3-ubyte"
    ):
        TorchvisionDataset("MNIST", root, download=True, timeout_s=2)(image_size=32)
    assert time.perf_counter() - start < 10
    assert sorted(p.name for p in root.rglob("*")) == ["keep.txt"]


def test_a_failed_download_removes_its_partial_files(tmp_path, monkeypatch):
    from urllib.error import URLError

    import torchvision.datasets.mnist as mnist

    import siamese.data.sources.torchvision_sets as tvdata

    def partial(url, download_root, filename=None, md5=None, **kw):
        (Path(download_root) / filename).write_bytes(b"half a file")
        raise URLError("connection reset")

    monkeypatch.setattr(tvdata, "preflight", lambda url, timeout: None)
    monkeypatch.setattr(mnist, "download_and_extract_archive", partial)
    with pytest.raises(RuntimeError, match="download failed"):
        TorchvisionDataset("MNIST", tmp_path, download=True)(image_size=32)
    assert list(tmp_path.iterdir()) == []


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_CACHE", str(tmp_path / "elsewhere"))
    assert TorchvisionDataset("KMNIST", download=False).root == tmp_path / "elsewhere"


# --- augmentation ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["light", "strong"])
def test_augmentation_replays_and_changes_images(glyphs, kind):
    batch = glyphs.images[:24].view(8, 3, 3, 16, 16)  # (B, T, C, H, W)
    aug = augmentation(kind)
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    a = aug(batch, g)
    b = aug(batch, g)
    g.set_state(state)
    assert torch.equal(aug(batch, g), a)  # same generator state, same images
    assert a.shape == batch.shape and a.dtype == torch.uint8
    assert not torch.equal(a, b) and not torch.equal(a, batch)
    changed = (a != batch).flatten(2).any(2)  # per image
    assert changed.float().mean() > 0.9  # parameters are drawn per image, not per batch
    grey = augmentation(kind)(glyphs.images[:4, :1], torch.Generator().manual_seed(0))
    assert grey.shape == (4, 1, 16, 16)


def test_augmentation_none_and_identity(glyphs):
    g = torch.Generator().manual_seed(0)
    assert augmentation("none")(glyphs.images, g) is glyphs.images
    # geometry that is the identity samples every pixel exactly
    same = augmentation("none", crop_ratio=(1.0, 1.0))
    assert torch.equal(same(glyphs.images, g), glyphs.images)
    flip = augmentation("none", hflip=1.0)(glyphs.images, g)
    assert torch.equal(flip, glyphs.images.flip(-1))
    with pytest.raises(ArgumentError, match=r"^hflip must be in \[0, 1\], got 1.5"):
        augmentation("light", hflip=1.5)
    with pytest.raises(ArgumentError, match="^crop_scale must satisfy 0 < low <= high <= 1"):
        augmentation("light", crop_scale=(0.9, 0.5))


# --- pretrained weights ---------------------------------------------------------------------


def test_pretrained_resnet18_from_the_hub_cache_only(tmp_path, monkeypatch):
    from torchvision.models import resnet18

    from siamese.models.backbones import ResNet18, resnet18_weights_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"resnet18-f37072fd\.pth is not in torch's hub cache"):
        ResNet18(3, None, True, BatchNorm())
    assert time.perf_counter() - start < 2
    _, path = resnet18_weights_path()
    path.parent.mkdir(parents=True)
    state = resnet18(weights=None).state_dict()
    state["layer1.0.conv1.weight"].fill_(0.5)
    torch.save(state, path)
    net = ResNet18(3, None, True, BatchNorm())
    assert bool((net.net.layer1[0].conv1.weight == 0.5).all())
    assert net.input_mean == pytest.approx((0.485, 0.456, 0.406))
    assert ResNet18(3, None, False, BatchNorm()).input_mean is None
    grey = ResNet18(1, None, True, BatchNorm())
    assert grey.input_std == pytest.approx(((0.229 + 0.224 + 0.225) / 3,))
    with pytest.raises(ArgumentError, match="^weights='IMAGENET1K_V1' holds batch-norm layers"):
        ResNet18(3, None, True, GroupNorm(max_groups=8))


def test_worker_gathered_batches_equal_in_memory_batches(tmp_path, glyphs):
    from torch.utils.data import DataLoader

    from siamese.data.batches import GatherBatch, SampledBatches

    root = tmp_path / "png"
    write_glyph_folder(glyphs, root)
    memory = ImageFolder(root)(image_size=16)
    lazy = ImageFolder(root, max_memory_gb=1e-6)(image_size=16)
    sampler = PairSampler().bind(memory.labels, torch.Generator().manual_seed(3))
    expected = [memory.images[sampler.sample(8)] for _ in range(4)]
    loader = DataLoader(
        GatherBatch(lazy),
        sampler=SampledBatches(
            PairSampler().bind(lazy.labels, torch.Generator().manual_seed(3)), 8, 4, 3
        ),
        batch_size=None,
        num_workers=2,
    )
    got = [batch["images"] for batch in loader]
    assert len(got) == 4 and all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def test_folder_through_the_data_module_equals_the_glyph_source(tmp_path, glyphs):
    from siamese.data.datamodule import SiameseDataModule

    write_glyph_folder(glyphs, tmp_path / "png")
    modules = [
        SiameseDataModule(source, 16, SPLIT, None, channels=3, eval_pairs=50)
        for source in (lambda **decode: glyphs, ImageFolder(tmp_path / "png"))
    ]
    for m in modules:
        m.setup()
    a, b = modules
    for s in ("train", "val", "test"):
        assert torch.equal(a.splits[s].images, b.splits[s].images)
        assert a.splits[s].class_names == b.splits[s].class_names
    for s in ("val", "test"):
        assert torch.equal(a.pairs[s], b.pairs[s])
