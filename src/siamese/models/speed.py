"""Options that change how fast a run trains, not what it trains: the encoder in channels-last
memory order and compiled with torch.compile, and the C allocator keeping freed memory. None
changes the weights' names or values, so checkpoints, export and evaluation see the plain model."""

from typing import TYPE_CHECKING

import torch

from siamese.core.memory import keep_freed_memory as keep_memory

if TYPE_CHECKING:  # the config checks read COMPILE_MODES without importing Lightning
    from siamese.models.lightning import SiameseModule

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def apply_speed(
    module: "SiameseModule",
    channels_last: bool,
    compile: bool,
    compile_mode: str,
    keep_freed_memory: bool = True,  # a run saved before this option resumes with it
) -> "SiameseModule":
    """channels_last: convolutions and their inputs in NHWC order (tensor cores read it without
    a transpose); compile: the encoder through torch.compile (mode reduce-overhead captures CUDA
    graphs), compiled in place so that its parameters keep their names in checkpoints. The mode is
    checked with the config (checks.RULES, naming speed.compile_mode) before anything is built.
    keep_freed_memory: the training process keeps freed memory for the next step instead of
    returning it to the kernel (`siamese.core.memory`): set here, at the start of every job."""
    if keep_freed_memory:
        keep_memory()
    if channels_last:
        module.encoder.to(memory_format=torch.channels_last)
        module.channels_last = True
    if compile:
        module.encoder.compile(mode=compile_mode)
    return module
