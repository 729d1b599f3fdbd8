"""Rebuild a trained model from a checkpoint alone (it carries its resolved config and τ)."""

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from siamese.build import build_module
from siamese.callbacks import CONFIG_KEY
from siamese.modules import SiameseModule


def load_checkpoint(path: str | Path) -> tuple[SiameseModule, DictConfig]:
    """The module in eval mode, with its weights, pixel statistics and threshold τ, and its config."""
    return rebuild(read_checkpoint(path))


def read_checkpoint(path: str | Path) -> dict:
    """A checkpoint of a siamese run, as saved; errors name the file and what to use instead."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a directory: name a .ckpt file in it")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise ValueError(f"checkpoint {path} could not be read: {err}") from err
    if not isinstance(ckpt, dict) or CONFIG_KEY not in ckpt or "state_dict" not in ckpt:
        raise ValueError(
            f"{path} is not a checkpoint of a siamese run (no '{CONFIG_KEY}' in it); "
            "use the last.ckpt or best.ckpt of a run folder"
        )
    return ckpt


def rebuild(ckpt: dict) -> tuple[SiameseModule, DictConfig]:
    """The module a read checkpoint describes (built from its own config), in eval mode."""
    cfg = OmegaConf.create(ckpt[CONFIG_KEY])
    if "weights" in cfg.backbone:  # the checkpoint's weights replace them: never load those
        cfg.backbone.weights = None
        cfg.backbone.pretrained = False
    state = ckpt["state_dict"]
    module = build_module(cfg, state["pixel_mean"], state["pixel_std"])
    module.load_state_dict(state)
    return module.eval(), cfg
