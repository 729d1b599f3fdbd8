"""The checkpoint of a run: what the project stores in it (its resolved config, the training
classes' names) and how it is read back: with `torch.load(weights_only=True)`, so that a file
holding more than plain data and tensors is refused unless trusted (unpickling such a file can run
code from it), and with the configs of earlier layouts mapped to today's."""

import copy
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback

from siamese.core.atomic import AtomicCheckpointIO

CONFIG_KEY = "siamese_config"  # where every checkpoint of this package keeps its resolved config
CLASS_NAMES_KEY = "siamese_class_names"  # the training split's classes (an export's metadata)


class ConfigInCheckpoint(Callback):
    """Stores the resolved config (and the training classes' names) in every checkpoint, so a
    checkpoint alone rebuilds its model; as plain data, which loads with weights_only=True."""

    def __init__(self, cfg: DictConfig, class_names: list[str] | None = None):
        self.config = plain(OmegaConf.to_container(cfg, resolve=True))
        self.class_names = None if class_names is None else [str(n) for n in class_names]

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.config
        if self.class_names is not None:
            checkpoint[CLASS_NAMES_KEY] = self.class_names


def plain(value: Any) -> Any:
    """A config container with its paths as strings (an untyped OmegaConf node keeps a
    pathlib.Path), so that torch.load(weights_only=True) reads it without allowing a class."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return os.fspath(value) if isinstance(value, os.PathLike) else value


class UntrustedCheckpointError(ValueError):
    """A checkpoint holding Python objects besides plain data and tensors: not loaded."""


def read_checkpoint(path: str | Path, trust: bool = False) -> dict:
    """A checkpoint of a siamese run, its config in today's layout; errors name the file and what
    to use instead. Every command that reads a checkpoint reads it here (training's resume and
    best-checkpoint scoring through `CheckpointFiles`). Without `trust` only plain data and
    tensors load: a file holding other objects is refused, naming them, and nothing in it runs."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a directory: name a .ckpt file in it")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as err:
        held = None if trust else _unsafe_globals(path, err)
        if held:
            raise UntrustedCheckpointError(_refusal(path, held)) from None
        raise ValueError(f"checkpoint {path} could not be read: {err}") from err
    except Exception as err:
        raise ValueError(f"checkpoint {path} could not be read: {err}") from err
    if not isinstance(ckpt, dict) or CONFIG_KEY not in ckpt or "state_dict" not in ckpt:
        raise ValueError(
            f"{path} is not a checkpoint of a siamese run (no '{CONFIG_KEY}' in it); "
            "use the last.ckpt or best.ckpt of a run folder"
        )
    ckpt[CONFIG_KEY] = upgrade_config(ckpt[CONFIG_KEY])
    return ckpt


def _unsafe_globals(path: Path, err: pickle.UnpicklingError) -> list[str]:
    """The classes and functions in the file that weights_only refuses ("posix.system"), read
    from its pickle without running it; for a file torch cannot list (the legacy format, not a
    zip), the one its error names."""
    try:
        held = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (ValueError, RuntimeError):
        held = []
    return sorted(held) or re.findall(r"GLOBAL ([\w.]+)", str(err))[:1]


def _refusal(path: Path, held: list[str]) -> str:
    return (
        f"checkpoint {path} holds {', '.join(held)}: Python objects besides the plain data and "
        "tensors a checkpoint of this project holds. Unpickling them could run code from the "
        "file, so it was not loaded. If you trust where it came from, add trust=true to the "
        "command. To share a model, share its ONNX export (python -m siamese.export "
        "ckpt_path=FILE format=onnx): it holds no code."
    )


class CheckpointFiles(AtomicCheckpointIO):
    """The trainer's checkpoint files: written atomically, read through `read_checkpoint` (a
    resumed run, `ckpt_path="best"`), so that training trusts a file only when told (`trust`)."""

    def __init__(self, trust: bool = False):
        super().__init__()
        self.trust = trust

    def load_checkpoint(
        self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None
    ) -> dict:
        """To the CPU, as Lightning's own reader does; `trust` decides, not `weights_only`."""
        return read_checkpoint(path, self.trust)


# classes that moved: the `_target_` an earlier run stored -> where the class is now
MOVED = {
    "siamese.modules.PairSiameseModule": "siamese.models.lightning.PairSiameseModule",
    "siamese.modules.TripletSiameseModule": "siamese.models.lightning.TripletSiameseModule",
    "siamese.data.SiameseDataModule": "siamese.data.datamodule.SiameseDataModule",
    "siamese.data.SyntheticGlyphs": "siamese.data.sources.synthetic.SyntheticGlyphs",
    "siamese.data.sources.ImageFolder": "siamese.data.sources.folder.ImageFolder",
    "siamese.data.sources.CSVManifest": "siamese.data.sources.manifest.CSVManifest",
    "siamese.data.tvdata.TorchvisionDataset": "siamese.data.sources.torchvision_sets.TorchvisionDataset",
    "siamese.data.PairSampler": "siamese.data.samplers.PairSampler",
    "siamese.data.TripletSampler": "siamese.data.samplers.TripletSampler",
    "siamese.data.PKSampler": "siamese.data.samplers.PKSampler",
    "siamese.losses.ContrastiveLoss": "siamese.losses.contrastive.ContrastiveLoss",
    "siamese.losses.TripletLoss": "siamese.losses.triplet.TripletLoss",
    "siamese.losses.SDRNLoss": "siamese.losses.sdrn.SDRNLoss",
    "siamese.losses.TripletBatchHardLoss": "siamese.losses.mined.TripletBatchHardLoss",
    "siamese.losses.TripletSemiHardLoss": "siamese.losses.mined.TripletSemiHardLoss",
    "siamese.losses.TripletBatchAllLoss": "siamese.losses.mined.TripletBatchAllLoss",
    "siamese.losses.ContrastiveAllPairsLoss": "siamese.losses.mined.ContrastiveAllPairsLoss",
}


# `normalization.layer` of earlier runs -> the class that option builds now
NORMALIZATIONS = {
    "batchnorm": {"_target_": "siamese.models.normalization.BatchNorm"},
    "layernorm": {"_target_": "siamese.models.normalization.LayerNorm"},
    "groupnorm": {"_target_": "siamese.models.normalization.GroupNorm", "max_groups": 8},
    "none": {"_target_": "siamese.models.normalization.NoNorm"},
}
# `augmentation.kind` of earlier runs -> its values (src/siamese/conf/augmentation/*.yaml)
NEUTRAL = {"crop_scale": [1.0, 1.0], "crop_ratio": [1.0, 1.0], "hflip": 0.0, "rotation": 0.0}
NEUTRAL |= {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0}
AUGMENTATIONS = {
    "none": NEUTRAL,
    "light": NEUTRAL
    | {"crop_scale": [0.8, 1.0], "hflip": 0.5}
    | {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2},
    "strong": {"crop_scale": [0.5, 1.0], "crop_ratio": [3 / 4, 4 / 3], "hflip": 0.5}
    | {"rotation": 15.0, "brightness": 0.4, "contrast": 0.4, "saturation": 0.4},
}
# keys added since: their values in runs that predate them (Koch's affine off, no re-ranking)
AFFINE_OFF = {"shear": 0.0, "scale": [1.0, 1.0], "translate": 0.0}
FILE_SOURCES = ("ImageFolder", "CSVManifest", "TorchvisionDataset")


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """A stored config as today's code reads it: moved classes named where they are now, the
    layouts of earlier runs (a normalization name, an augmentation preset, a partial sampler,
    source keys written twice) in today's form, and keys added since at their neutral values."""
    config = copy.deepcopy(config)
    _retarget(config)
    norm = config.get("normalization")
    if isinstance(norm, dict) and "layer" in norm:
        config["normalization"] = dict(NORMALIZATIONS[norm["layer"]])
        config.get("backbone", {}).pop("normalization", None)
    augment = config.get("augmentation")
    if isinstance(augment, dict) and "kind" in augment:
        given = {k: v for k, v in augment.items() if v is not None and k != "kind"}
        config["augmentation"] = AUGMENTATIONS[augment["kind"]] | given
    if isinstance(config.get("augmentation"), dict):
        config["augmentation"] = AFFINE_OFF | config["augmentation"]
    if isinstance(config.get("evaluation"), dict):
        config["evaluation"].setdefault("rerank_k", None)
    if isinstance(config.get("sampler"), dict):
        config["sampler"].pop("_partial_", None)
    data = config.get("data")
    if isinstance(data, dict) and isinstance(data.get("source"), dict):
        source = data["source"]
        if str(source.get("_target_", "")).endswith(FILE_SOURCES):  # its keys live beside it
            data["source"] = {"_target_": source["_target_"]}
        source.pop("image_size", None)
        data.setdefault("loader_workers", 0)
    return config


def _retarget(node: Any) -> None:
    if isinstance(node, dict):
        target = node.get("_target_")
        if isinstance(target, str) and target in MOVED:
            node["_target_"] = MOVED[target]
        for value in node.values():
            _retarget(value)
    elif isinstance(node, list):
        for value in node:
            _retarget(value)
