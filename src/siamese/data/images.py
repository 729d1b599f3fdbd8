"""Image files to uint8 tensors of the size and channels a model was trained on."""

from pathlib import Path

import torch
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def load_image(path: str | Path, channels: int, size: int) -> Tensor:
    """(channels, size, size) uint8; errors name the file."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    try:
        with Image.open(path) as img:
            img = img.convert("RGB" if channels == 3 else "L").resize(
                (size, size), Image.Resampling.BILINEAR
            )
            data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    except Exception as err:
        raise ValueError(f"cannot read image {path}: {err}") from err
    return data.view(size, size, channels).permute(2, 0, 1).contiguous()


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"gallery folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"gallery folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files
