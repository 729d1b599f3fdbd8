"""Typed schemas of the option groups that build one object each (data, augmentation, sampler,
backbone, normalization, optimizer, scheduler): types only, the values are in the options' YAMLs."""

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING


@dataclass
class Target:
    _target_: str = MISSING


@dataclass
class Partial(Target):
    _partial_: bool = MISSING


# --- data -------------------------------------------------------------------------------------
@dataclass
class SplitConf:
    train: float = MISSING
    val: float = MISSING
    test: float = MISSING


@dataclass
class DataModuleConf(Target):
    """The data module's own keys (src/siamese/conf/base/data.yaml); a data option adds its source's."""

    source: Any = MISSING
    channels: int = MISSING
    image_size: int = MISSING
    resize: str = MISSING
    batch_size: int = MISSING
    images_per_step: int | None = MISSING
    steps_per_epoch: int | None = MISSING
    eval_batch_size: int = MISSING
    eval_pairs: int = MISSING
    split: SplitConf = MISSING
    split_by: str = MISSING
    split_seed: int = MISSING
    folds: int | None = MISSING
    fold: int = MISSING
    loader_workers: int = MISSING


@dataclass
class SyntheticSourceConf(Target):
    num_classes: int = MISSING
    samples_per_class: int = MISSING
    strokes: int = MISSING
    palette_size: int = MISSING
    rotation: float = MISSING
    scale: float = MISSING
    translation: float = MISSING
    stroke_jitter: float = MISSING
    colour_jitter: float = MISSING
    noise: float = MISSING
    seed: int = MISSING


@dataclass
class SyntheticConf(DataModuleConf):
    source: SyntheticSourceConf = MISSING


@dataclass
class DecodedConf(DataModuleConf):
    """Image files decoded once into memory (or streamed): keys the file sources share."""

    source: Target = MISSING
    num_workers: int | None = MISSING
    cache: bool = MISSING
    max_memory_gb: float = MISSING


@dataclass
class FolderConf(DecodedConf):
    root: str = MISSING
    class_depth: int = MISSING
    skip_bad: bool = MISSING


@dataclass
class CSVConf(DecodedConf):
    manifest: str = MISSING
    skip_bad: bool = MISSING


@dataclass
class TorchvisionConf(DecodedConf):
    name: str = MISSING
    root: str | None = MISSING
    download: bool = MISSING
    official_split: bool | None = MISSING


@dataclass
class AugmentationConf(Target):
    crop_scale: list[float] = MISSING
    crop_ratio: list[float] = MISSING
    hflip: float = MISSING
    rotation: float = MISSING
    shear: float = MISSING
    scale: list[float] = MISSING
    translate: float = MISSING
    brightness: float = MISSING
    contrast: float = MISSING
    saturation: float = MISSING


# --- samplers and models (brought by the loss) -------------------------------------------------
@dataclass
class PairSamplerConf(Target):
    positive_fraction: float = MISSING


@dataclass
class PKSamplerConf(Target):
    samples_per_class: int = MISSING


# --- backbones ---------------------------------------------------------------------------------
@dataclass
class Backbone(Target):
    """A backbone's keys; its normalization is the top-level `normalization` option's."""


@dataclass
class ConvNetConf(Backbone):
    in_channels: int = MISSING
    widths: list[int] = MISSING


@dataclass
class MLPConf(Backbone):
    in_features: int = MISSING
    hidden: list[int] = MISSING
    activations: list[str] = MISSING


@dataclass
class TwoBranchConf(Backbone):
    in_channels: int = MISSING
    spatial_widths: list[int] = MISSING
    colour_hidden: int = MISSING
    fused: int = MISSING


@dataclass
class KochConf(Backbone):
    in_channels: int = MISSING
    image_size: int = MISSING
    widths: list[int] = MISSING
    kernels: list[int] = MISSING
    features: int = MISSING


@dataclass
class ResNet18Conf(Backbone):
    in_channels: int = MISSING
    weights: str | None = MISSING
    pretrained: bool = MISSING


@dataclass
class GroupNormConf(Target):
    max_groups: int = MISSING


# --- optimization ------------------------------------------------------------------------------
@dataclass
class OptimizerConf(Partial):
    lr: float = MISSING
    weight_decay: float = MISSING
    fused: bool | None = MISSING


@dataclass
class AdamConf(OptimizerConf):
    betas: list[float] = MISSING


@dataclass
class AdagradConf(OptimizerConf):
    lr_decay: float = MISSING


@dataclass
class SGDConf(OptimizerConf):
    momentum: float = MISSING
    nesterov: bool = MISSING


@dataclass
class CosineConf(Partial):
    T_max: int = MISSING
    eta_min: float = MISSING


@dataclass
class StepConf(Partial):
    step_size: int = MISSING
    gamma: float = MISSING
