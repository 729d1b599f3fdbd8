"""Options that change how fast a run trains, not what it trains: the encoder in channels-last
memory order and compiled with torch.compile. Both keep the weights' names and values, so
checkpoints, export and evaluation see the plain model."""

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the config checks read COMPILE_MODES without importing Lightning
    from siamese.models.lightning import SiameseModule

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def apply_speed(
    module: "SiameseModule", channels_last: bool, compile: bool, compile_mode: str
) -> "SiameseModule":
    """channels_last: convolutions and their inputs in NHWC order (tensor cores read it without
    a transpose); compile: the encoder through torch.compile (mode reduce-overhead captures CUDA
    graphs), compiled in place so that its parameters keep their names in checkpoints. The mode is
    checked with the config (checks.RULES, naming speed.compile_mode) before anything is built."""
    if channels_last:
        module.encoder.to(memory_format=torch.channels_last)
        module.channels_last = True
    if compile:
        module.encoder.compile(mode=compile_mode)
    return module
