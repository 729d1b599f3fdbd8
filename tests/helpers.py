"""What several test modules share: where the project is, its config options, and data written
as a user would have it (image folders, torchvision roots)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image

from siamese.data.augment import Augmentation
from siamese.data.imageset import ImageSet

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "src" / "siamese" / "conf"
SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2}  # conf/base/data.yaml's
TINY = ["debug=tiny"]  # conf/debug/tiny.yaml: seconds on a CPU, every metric still defined


def python(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python ARGS` as a user runs it, in `cwd`, with `env` added to this environment."""
    env = {**os.environ, **(env or {})}
    cmd = [sys.executable, *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def option_values(group: str, option: str) -> dict:
    """The values an option's YAML holds itself (no defaults list, no `_target_`)."""
    values = OmegaConf.to_container(OmegaConf.load(CONF / group / f"{option}.yaml"))
    return {k: v for k, v in values.items() if k not in ("defaults", "_target_")}


def augmentation(option: str, **changed) -> Augmentation:
    """The augmentation `augmentation=<option>` builds, with some values changed."""
    return Augmentation(**(option_values("augmentation", option) | changed))


def pil(t: torch.Tensor) -> Image.Image:
    """A (C, H, W) uint8 image, C 1 (grey) or 3 (RGB), as PIL's."""
    return Image.fromarray(t[0].numpy() if t.shape[0] == 1 else t.permute(1, 2, 0).numpy())


def write_glyph_folder(data: ImageSet, root, fmt: str = "png") -> None:
    for i, (image, label) in enumerate(zip(data.images, data.labels.tolist(), strict=True)):
        folder = root / data.class_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        pil(image).save(folder / f"{i:04d}.{fmt}")


def _idx(path, array: np.ndarray) -> None:
    """An MNIST idx file: magic (0, 0, uint8 type 8, ndim), big-endian sizes, the bytes."""
    head = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(head + array.astype(np.uint8).tobytes())


def fake_mnist(root, n_train=20, n_test=10):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x, y = g.integers(0, 256, (n, 28, 28)), np.arange(n) % 10
        _idx(raw / f"{prefix}-images-idx3-ubyte", x)
        _idx(raw / f"{prefix}-labels-idx1-ubyte", y)
        arrays[prefix] = (x.astype(np.uint8), y)
    return arrays


def grey(path, level: int, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (size, size), level).save(path)


# A hand-made archive of the official Omniglot runs' layout (runXX/class_labels.txt, training/,
# test/), with a known answer under a model that embeds an image as its mean grey level.
CLASS_LEVELS = {1: 10, 2: 80, 3: 150, 4: 220}  # each training image: one grey level
IN_ORDER = [(i, i) for i in range(1, 5)]  # (test item, its class), as the official files list them
OFFICIAL_RUNS = {
    # run01: every item nearest its own class: 0% error
    "run01": (IN_ORDER, {1: 15, 2: 85, 3: 155, 4: 225}),
    # run02: item03 (class03) is nearer class02's level: 1 of 4 wrong, 25%
    "run02": (IN_ORDER, {1: 15, 2: 85, 3: 110, 4: 225}),
    # run03: its lines out of order: the script sorts the test files but not the answers, so
    # item01 is checked against class02 and item02 against class01: 2 of 4 wrong, 50%
    "run03": ([(2, 2), (1, 1), (3, 3), (4, 4)], {1: 15, 2: 85, 3: 155, 4: 225}),
}
OFFICIAL_RUNS_ERRORS = {"run01": 0.0, "run02": 25.0, "run03": 50.0}  # mean 25%


def write_official_runs(root) -> None:
    for run, (lines, item_levels) in OFFICIAL_RUNS.items():
        for c, level in CLASS_LEVELS.items():
            grey(root / run / "training" / f"class{c:02d}.png", level)
        for i, level in item_levels.items():
            grey(root / run / "test" / f"item{i:02d}.png", level)
        text = [f"{run}/test/item{i:02d}.png {run}/training/class{c:02d}.png" for i, c in lines]
        (root / run / "class_labels.txt").write_text("\n".join(text) + "\n")


def official_runs_archive(path) -> None:
    """The hand-made runs zipped as the repository's all_runs.zip is (run01/... at its top)."""
    import zipfile

    runs = path.parent / f"{path.stem}_files"
    write_official_runs(runs)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for file in sorted(runs.rglob("*")):
            z.write(file, file.relative_to(runs))
