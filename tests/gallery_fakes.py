"""What the gallery, search and service tests share: a small exported model (TorchScript, with
the JSON an export writes beside it) and a gallery folder of glyph images."""

import json
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from siamese.data.sources.synthetic import SyntheticGlyphs
from tests.helpers import pil

SIZE, DIM = 16, 8


class Linear(nn.Module):
    """uint8 (N, 3, SIZE, SIZE) → (N, DIM): a fixed random projection, as an export takes."""

    def __init__(self, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(3 * SIZE * SIZE, DIM, generator=g) / SIZE)

    def forward(self, images: Tensor) -> Tensor:
        return images.float().div(255).flatten(1) @ self.weight


def write_model(folder: Path, seed: int = 0, threshold: float = 1.0, name: str = "model.pt"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with warnings.catch_warnings():  # torch.jit is deprecated, still what exports load
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(Linear(seed).eval()).save(str(path))
    meta = {"image_size": SIZE, "channels": 3, "distance": "euclidean", "threshold": threshold,
            "embedding_dim": DIM, "resize": "stretch"}  # fmt: skip
    (folder / f"{name}.json").write_text(json.dumps(meta))
    return path


def glyph_images(n_classes: int = 6, per_class: int = 4, seed: int = 3):
    return SyntheticGlyphs(num_classes=n_classes, samples_per_class=per_class, seed=seed)(
        image_size=SIZE
    )


def write_gallery(folder: Path, n_classes: int = 6, per_class: int = 4, seed: int = 3):
    """Class folders of PNGs: folder/<class>/<i>.png; returns the files in sorted order."""
    data = glyph_images(n_classes, per_class, seed)
    files = []
    for i, (image, label) in enumerate(zip(data.images, data.labels.tolist(), strict=True)):
        path = folder / data.class_names[label] / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        pil(image).save(path)
        files.append(path)
    return sorted(files)
