"""A trained model rebuilt from its checkpoint alone (it carries its resolved config and τ)."""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from siamese.models.lightning import SiameseModule
from siamese.run.build import build_module
from siamese.run.checkpoint import CONFIG_KEY, read_checkpoint


def load_checkpoint(path: str | Path, trust: bool = False) -> tuple[SiameseModule, DictConfig]:
    """The module in eval mode, with its weights, pixel statistics and threshold τ, and its config;
    `trust` loads a file that holds more than plain data and tensors (see `read_checkpoint`)."""
    return rebuild(read_checkpoint(path, trust))


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
