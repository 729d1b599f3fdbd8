"""Image files to uint8 tensors of the size and channels a model was trained on.

`load_image` is the one decoding path: training sources (folder, manifest, Omniglot), streaming
batches, `verify` and `search` all call it with the same (channels, size, resize), so an image is
the same tensor wherever it is read.
"""

import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps
from torch import Tensor

from siamese.core.errors import DataError, MissingFileError, at_least, one_of


def _decodable(fmt: str) -> bool:
    """PIL opens and decodes the format by itself: not save-only (PDF), not a stub that needs a
    handler registered (HDF5, GRIB), not a non-image MIME type (MPEG video: identified, never
    decoded; PostScript: needs Ghostscript)."""
    opener = Image.OPEN.get(fmt, (None,))[0]
    if opener is None or (isinstance(opener, type) and issubclass(opener, ImageFile.StubImageFile)):
        return False
    return Image.MIME.get(fmt, "image/").startswith("image/")


# every suffix PIL registers for a format it decodes: .png .jpg .pgm .ppm .pbm .tif .webp ...
IMAGE_SUFFIXES = tuple(
    sorted(s for s, fmt in Image.registered_extensions().items() if _decodable(fmt))
)
RESIZE_MODES = ("stretch", "crop")
# Transparent pixels are composited onto white: scanned signatures, logos and product cut-outs are
# drawn for a white page, and white keeps them identical to their opaque originals.
ALPHA_BACKGROUND = (255, 255, 255)


class ImageDecodeError(DataError):
    """An image file that cannot be decoded (missing, truncated, corrupt or not an image)."""


# what PIL raises for a file that is not a readable image: not an image (UnidentifiedImageError,
# an OSError), truncated (OSError), corrupt chunks (SyntaxError, ValueError, EOFError,
# struct.error, zlib.error), a decompression bomb. A bug in the conversion is none of these.
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


def check_decode_options(channels: int, size: int, resize: str) -> None:
    one_of("channels", channels, (1, 3))
    at_least("image_size", size, 1)
    one_of("resize", resize, RESIZE_MODES)


def load_image(path: str | Path, channels: int, size: int, resize: str = "stretch") -> Tensor:
    """(channels, size, size) uint8. `resize="stretch"` scales to size × size ignoring the aspect
    ratio; `"crop"` scales the short side to `size` and keeps the centre. The first frame of an
    animated GIF or multi-page TIFF; EXIF orientation applied; alpha composited onto white;
    16-bit images scaled to 8 bits. Errors name the file."""
    check_decode_options(channels, size, resize)
    path = Path(path)
    if not path.is_file():
        raise ImageDecodeError(f"image {path} does not exist or is not a file")
    try:
        with Image.open(path) as img:
            if img.format == "JPEG":  # decode big JPEGs at a reduced scale (still >= size)
                img.draft("RGB" if channels == 3 else "L", (size, size))
            img.load()  # truncated files raise here, not later
            return convert_image(img, channels, size, resize)
    except DECODE_ERRORS as err:
        raise ImageDecodeError(
            f"cannot read image {path}: {err}. Replace or delete the file "
            "(training: data.skip_bad=true skips and counts such files)"
        ) from err


def convert_image(img, channels: int, size: int, resize: str = "stretch") -> Tensor:
    """A PIL image to (channels, size, size) uint8, as `load_image` does it."""
    img = ImageOps.exif_transpose(img)
    img = _to_8bit(img)
    if img.mode in ("RGBA", "LA", "La", "RGBa", "PA") or (
        img.mode == "P" and "transparency" in img.info
    ):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        img = Image.alpha_composite(background, rgba)
    img = img.convert("RGB" if channels == 3 else "L")
    w, h = img.size
    if resize == "crop" and (w, h) != (size, size):
        m = min(w, h)  # the centred square: short side scaled to size, the long side cropped
        left, top = (w - m) // 2, (h - m) // 2
        img = img.crop((left, top, left + m, top + m))  # crop first: no blur from outside
        if m != size:
            img = img.resize((size, size), Image.Resampling.BILINEAR)
    elif (w, h) != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    data = torch.from_numpy(np.array(img, dtype=np.uint8, copy=True))
    return data.view(size, size, channels).permute(2, 0, 1).contiguous()


def _to_8bit(img):
    """16-bit and 32-bit integer or float grey images scaled to 8 bits (PIL would clip them)."""
    if img.mode.startswith("I;16") or img.mode == "I":
        a = np.asarray(img).astype(np.float64)
        a = np.clip(a, 0, 65535) / 257.0  # 16-bit range, the common case (PNG and TIFF)
        return Image.fromarray(np.round(a).astype(np.uint8))
    if img.mode == "F":
        a = np.asarray(img).astype(np.float64)
        if a.size and np.nanmax(a) <= 1.0:  # a float image in [0, 1]
            a = a * 255.0
        return Image.fromarray(np.round(np.clip(np.nan_to_num(a), 0, 255)).astype(np.uint8))
    return img


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"gallery folder {folder} does not exist")
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and _visible(p, folder)
    )
    if not files:
        raise DataError(f"gallery folder {folder} holds no images ({suffixes_named()})")
    return files


def suffixes_named() -> str:
    """The image suffixes, for an error: a few common ones and how many in all."""
    common = [".png", ".jpg", ".pgm", ".ppm", ".bmp", ".tif", ".webp", ".gif"]
    return f"suffixes PIL reads: {' '.join(common)} ... ({len(IMAGE_SUFFIXES)} in all)"


def _visible(path: Path, root: Path) -> bool:
    """Not hidden (no part of the path below root starts with '.'; e.g. the decode cache)."""
    return not any(part.startswith(".") for part in path.relative_to(root).parts)
