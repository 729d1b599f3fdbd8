"""A trained encoder behind one interface, whatever file holds it: a run's checkpoint (.ckpt), or an
export of `python -m siamese.export` (.onnx run by onnxruntime, TorchScript .pt). The exported
files load without Lightning or Hydra: only torch (and onnxruntime for .onnx) is imported.

    model = load_model("run/export/model.onnx")
    e = model.embed(uint8_images)              # (N, C, H, W) uint8 → (N, D) float32
    same = model.distance_between(e[0], e[1]) < model.threshold
"""

import json
import math
import warnings
from pathlib import Path

import torch
from torch import Tensor

from siamese.core.distances import check_distance, pair_distance, weighted_l1_logit

SUFFIXES = (".ckpt", ".onnx", ".pt")
DEFAULT_RESIZE = "stretch"  # load_image's own default: how every run before the option resized


def meta_path(model_path: str | Path) -> Path:
    """The JSON written beside an exported model: model.onnx → model.onnx.json."""
    path = Path(model_path)
    return path.with_name(path.name + ".json")


class Model:
    """What verify and search need: the embedding function and how to feed and read it."""

    def __init__(
        self,
        path: Path,
        image_size: int,
        channels: int,
        distance: str,
        threshold: float,
        embedding_dim: int | None = None,
        resize: str = DEFAULT_RESIZE,
        class_names: list[str] | None = None,
        pair_head: dict | None = None,
    ):
        check_distance(distance)
        self.path, self.image_size, self.channels = path, int(image_size), int(channels)
        self.distance, self.threshold, self.resize = distance, float(threshold), resize
        self.embedding_dim, self.class_names = embedding_dim, class_names
        self.pair_head = None
        if pair_head is not None:  # loss=koch: its head's weighted L1, τ on its 1 − p scale
            if pair_head.get("kind") != "weighted_l1":
                raise ValueError(f"{path}: unknown pair head {pair_head.get('kind')!r}")
            self.pair_head = (torch.tensor(pair_head["weight"]), float(pair_head["bias"]))

    def embed(self, images: Tensor) -> Tensor:
        """uint8 (N, C, H, W) images → float32 (N, D) embeddings, as the training module embeds."""
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"embed takes uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        expected = (self.channels, self.image_size, self.image_size)
        if tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"{self.path} takes images of shape (N, {', '.join(map(str, expected))}), got "
                f"{tuple(images.shape)}: decode them with the model's image_size and channels"
            )
        with torch.inference_mode():
            return self._embed(images)

    def _embed(self, images: Tensor) -> Tensor:
        raise NotImplementedError

    def distance_between(self, u: Tensor, v: Tensor) -> Tensor:
        """What verification compares with τ: the embedding distance, or for a model trained
        with a pair head (loss=koch) the head's 1 − p(same)."""
        if self.pair_head is None:
            return pair_distance(u, v, self.distance)
        weight, bias = self.pair_head
        return torch.sigmoid(-weighted_l1_logit(u.float(), v.float(), weight, bias))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.path}, image_size={self.image_size}, "
            f"channels={self.channels}, distance={self.distance}, threshold={self.threshold:.4f})"
        )


class CheckpointModel(Model):
    def __init__(self, path: Path, trust: bool = False):
        from siamese.run.restore import load_checkpoint  # Lightning and Hydra: only for a .ckpt

        self.module, cfg = load_checkpoint(path, trust)
        head = self.module.pair_scorer()
        super().__init__(
            path,
            image_size=cfg.data.image_size,
            channels=cfg.data.channels,
            distance=cfg.embedding.distance,
            threshold=float(self.module.threshold),
            embedding_dim=cfg.embedding.dim,
            resize=cfg.data.get("resize", DEFAULT_RESIZE),
            pair_head=head.exported() if head is not None else None,
        )

    def _embed(self, images: Tensor) -> Tensor:
        return self.module.embed(images).float()


class _ExportedModel(Model):
    def __init__(self, path: Path):
        meta_file = meta_path(path)
        if not meta_file.is_file():
            raise FileNotFoundError(
                f"{meta_file} is missing: an exported model needs the JSON that "
                "`python -m siamese.export` writes beside it"
            )
        try:
            meta = json.loads(meta_file.read_text())
            threshold = meta["threshold"]
            super().__init__(
                path,
                image_size=meta["image_size"],
                channels=meta["channels"],
                distance=meta["distance"],
                threshold=math.nan if threshold is None else threshold,
                embedding_dim=meta.get("embedding_dim"),
                resize=meta.get("resize") or DEFAULT_RESIZE,
                class_names=meta.get("class_names"),
                pair_head=meta.get("pair_head"),
            )
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(f"{meta_file} is not the metadata of a siamese export: {err}") from err
        self.meta = meta


class OnnxModel(_ExportedModel):
    def __init__(self, path: Path):
        super().__init__(path)
        import onnxruntime

        try:
            self.session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise ValueError(f"onnxruntime cannot load {path}: {err}") from err
        self.input_name = self.session.get_inputs()[0].name

    def _embed(self, images: Tensor) -> Tensor:
        (out,) = self.session.run(None, {self.input_name: images.contiguous().numpy()})
        return torch.from_numpy(out)


class TorchScriptModel(_ExportedModel):
    def __init__(self, path: Path):
        super().__init__(path)
        try:
            with warnings.catch_warnings():  # torch.jit is deprecated, but loads and runs
                warnings.simplefilter("ignore", FutureWarning)
                self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as err:
            raise ValueError(f"{path} is not a TorchScript model: {err}") from err

    def _embed(self, images: Tensor) -> Tensor:
        return self.module(images).float()


def load_model(path: str | Path, checkpoint: bool = False, trust: bool = False) -> Model:
    """A .ckpt (via siamese.run.checkpoint.read_checkpoint), .onnx or TorchScript .pt as a `Model`;
    `checkpoint` reads any file as a run's checkpoint, whatever its suffix; `trust` loads a
    checkpoint that holds more than plain data and tensors (it could run code)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"model {path} is a directory, not a file: give a {', '.join(SUFFIXES)} file "
            "(a run's checkpoints/best.ckpt, or export/model.onnx)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"model {path} does not exist")
    if checkpoint or path.suffix == ".ckpt":
        return CheckpointModel(path, trust)
    loaders = {".onnx": OnnxModel, ".pt": TorchScriptModel}
    if path.suffix not in loaders:
        raise ValueError(
            f"model {path}: unknown file type {path.suffix!r}, expected one of {', '.join(SUFFIXES)}"
        )
    return loaders[path.suffix](path)


def load_images(model: Model, paths: list[str | Path]) -> Tensor:
    """The files decoded as `model` was trained: (N, C, H, W) uint8; errors name the file."""
    from siamese.data.images import load_image

    images = []
    for p in paths:
        if Path(p).is_dir():
            raise IsADirectoryError(f"image {p} is a directory, not an image file")
        images.append(load_image(p, model.channels, model.image_size, model.resize))
    return torch.stack(images)


__all__ = [
    "CheckpointModel",
    "Model",
    "OnnxModel",
    "TorchScriptModel",
    "load_images",
    "load_model",
    "meta_path",
]
