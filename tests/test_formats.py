"""Images as they come: every format PIL decodes (the AT&T faces' PGM, PPM, PBM ...) in folders,
manifests, verify and search; nested layouts (Omniglot's alphabet/character/image) with
data.class_depth, class names joined with "/"."""

import json
import logging
import subprocess
import sys

import pytest
import torch

from siamese.data.images import IMAGE_SUFFIXES, list_images, load_image
from siamese.data.sources.folder import ImageFolder
from siamese.data.sources.manifest import CSVManifest
from siamese.data.sources.synthetic import SyntheticGlyphs
from tests.helpers import ROOT, pil


@pytest.fixture(scope="module")
def glyphs():
    return SyntheticGlyphs(num_classes=6, samples_per_class=4)(image_size=16, channels=1)


def faces(root, glyphs) -> None:
    """The AT&T layout: s1/001.pgm ... sN/..."""
    for i, (image, label) in enumerate(zip(glyphs.images, glyphs.labels.tolist(), strict=True)):
        folder = root / f"s{label + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        pil(image).save(folder / f"{i + 1:03d}.pgm")


def test_pil_s_formats_are_images_and_what_it_cannot_decode_is_not():
    assert {".pgm", ".ppm", ".pbm", ".pnm", ".png", ".jpg", ".tif", ".webp"} <= set(IMAGE_SUFFIXES)
    # save-only (PDF), a stub needing a handler (HDF5), a video PIL only identifies (MPEG)
    assert not {".pdf", ".h5", ".mpg", ".eps", ".txt", ".csv"} & set(IMAGE_SUFFIXES)


def test_a_pgm_folder_reads_as_written(tmp_path, glyphs):
    faces(tmp_path, glyphs)
    (tmp_path / "s1" / "README").write_text("not an image")
    (tmp_path / "s1" / "notes.pdf").write_bytes(b"%PDF-1.4")
    source = ImageFolder(tmp_path, cache=False)
    data = source(image_size=16, channels=1)
    assert data.class_names == [f"s{i}" for i in range(1, 7)]
    assert torch.equal(data.images, glyphs.images) and torch.equal(data.labels, glyphs.labels)
    assert source.stats["ignored_files"] == 2  # README and the PDF: ignored and counted


@pytest.mark.parametrize("suffix", ["ppm", "pbm", "tga", "qoi"])
def test_other_formats_pil_decodes_load_in_folders_manifests_and_search(tmp_path, suffix):
    rgb = torch.randint(
        0, 256, (3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    image = pil(rgb).convert("1") if suffix == "pbm" else pil(rgb)
    rows = ["path,label"]
    for c in ("a", "b"):
        for i in range(2):
            (tmp_path / c).mkdir(exist_ok=True)
            image.save(tmp_path / c / f"{i}.{suffix}")
            rows.append(f"{c}/{i}.{suffix},{c}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    expected = load_image(tmp_path / "a" / f"0.{suffix}", 3, 8)
    if suffix != "pbm":  # lossless: the same pixels come back
        assert torch.equal(expected, rgb)
    for source in (
        ImageFolder(tmp_path, cache=False),
        CSVManifest(tmp_path / "m.csv", cache=False),
    ):
        data = source(image_size=8)
        assert len(data) == 4 and torch.equal(data.images[0], expected)
    assert len(list_images(tmp_path)) == 4  # search's gallery


def omniglot(root, glyphs) -> None:
    """alphabet/character/image: 2 alphabets of 3 characters."""
    for i, (image, label) in enumerate(zip(glyphs.images, glyphs.labels.tolist(), strict=True)):
        folder = root / f"alphabet{label // 3}" / f"character{label % 3:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        pil(image).save(folder / f"{i:04d}.png")


def test_class_depth_2_takes_the_characters_as_classes(tmp_path, glyphs):
    omniglot(tmp_path, glyphs)
    (tmp_path / "alphabet0" / "about.txt").write_text("above the classes")
    source = ImageFolder(tmp_path, class_depth=2, cache=False)
    data = source(image_size=16, channels=1)
    assert data.class_names == [f"alphabet{a}/character{c:02d}" for a in (0, 1) for c in (0, 1, 2)]
    assert torch.equal(data.images, glyphs.images) and torch.equal(data.labels, glyphs.labels)
    assert source.stats["ignored_files"] == 1


def test_class_depth_1_on_a_nested_tree_says_which_depth_fits(tmp_path, glyphs, caplog):
    omniglot(tmp_path, glyphs)
    with caplog.at_level(logging.WARNING):
        data = ImageFolder(tmp_path, cache=False)(image_size=16, channels=1)
    assert data.class_names == ["alphabet0", "alphabet1"]
    assert "subfolders only" in caplog.text and "data.class_depth=2" in caplog.text


def test_a_depth_the_tree_does_not_have_fails_naming_the_folder(tmp_path, glyphs):
    omniglot(tmp_path / "omniglot", glyphs)
    faces(tmp_path / "faces", glyphs)
    too_deep = r"'.*character00' holds images .* and no class folders.*set data.class_depth=2$"
    with pytest.raises(ValueError, match=too_deep):
        ImageFolder(tmp_path / "omniglot", class_depth=3)(image_size=16)
    with pytest.raises(ValueError, match=r"'.*faces.s1' holds .* set data.class_depth=1$"):
        ImageFolder(tmp_path / "faces", class_depth=2)(image_size=16)
    with pytest.raises(ValueError, match=r"'.*s1' holds images .* put each class's images"):
        ImageFolder(tmp_path / "faces" / "s1")(image_size=16)
    with pytest.raises(ValueError, match="class_depth must be an integer >= 1, got 0"):
        ImageFolder(tmp_path / "faces", class_depth=0)


def train(tmp_path, *args: str) -> dict:
    cmd = [sys.executable, str(ROOT / "train.py"), "debug=fast", "data.image_size=16", *args]
    proc = subprocess.run(
        [*cmd, f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "run" / "metrics.json").read_text())


@pytest.mark.slow  # two runs of train.py: ~40 s
@pytest.mark.parametrize("layout", ["faces", "omniglot"])
def test_pgm_faces_and_a_nested_tree_train_and_score(tmp_path, layout):
    glyphs = SyntheticGlyphs(num_classes=12, samples_per_class=6)(image_size=16, channels=1)
    root = tmp_path / layout
    if layout == "faces":
        faces(root, glyphs)
        record = train(tmp_path, "data=folder", f"data.root={root}", "data.channels=1")
    else:
        omniglot(root, glyphs)
        record = train(
            tmp_path, "data=folder", f"data.root={root}", "data.channels=1", "data.class_depth=2"
        )
    assert record["status"] == "completed"
    assert 0 <= record["metrics"]["test/p_at_1"] <= 1 and 0 <= record["metrics"]["test/auc"] <= 1
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)
    names = ckpt["siamese_class_names"]
    assert all(("/" in n) == (layout == "omniglot") for n in names)
