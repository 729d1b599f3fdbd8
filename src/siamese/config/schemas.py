"""Typed schemas of the config groups, registered in Hydra's ConfigStore.

A schema holds types only: the values live in the option's YAML (`conf/<group>/<option>.yaml`, with
its `_target_`), which extends the schema (`defaults: [/schema/<group>/<name>@_here_]`), so a wrong
type or an unknown key fails at composition, naming the full key. The loss schemas live beside
their losses (`siamese.losses.*.SCHEMAS`). Value ranges are checked by the
constructors of the project's classes and, for the keys that reach other libraries or no object at
all, by `siamese.config.checks`.
"""

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from siamese.config.options import (
    AdagradConf,
    AdamConf,
    AugmentationConf,
    ConvNetConf,
    CosineConf,
    CSVConf,
    FolderConf,
    GroupNormConf,
    KochConf,
    MLPConf,
    PairSamplerConf,
    PKSamplerConf,
    ResNet18Conf,
    SGDConf,
    StepConf,
    SyntheticConf,
    Target,
    TorchvisionConf,
    TwoBranchConf,
)
from siamese.config.resolvers import register_resolvers


# --- trainer and logger ------------------------------------------------------------------------
@dataclass
class TrainerConf(Target):
    accelerator: str = MISSING
    devices: Any = MISSING
    strategy: str = MISSING
    num_nodes: int = MISSING
    precision: Any = MISSING
    max_epochs: int = MISSING
    max_steps: int = MISSING
    log_every_n_steps: int = MISSING
    check_val_every_n_epoch: int = MISSING
    gradient_clip_val: float | None = MISSING
    deterministic: bool = MISSING
    benchmark: bool = MISSING
    enable_progress_bar: bool = MISSING
    enable_model_summary: bool = MISSING
    num_sanity_val_steps: int = MISSING
    limit_train_batches: Any = MISSING
    use_distributed_sampler: bool = MISSING


@dataclass
class LoggerConf(Target):
    save_dir: str = MISSING  # relative to the run folder


@dataclass
class TensorBoardConf(LoggerConf):
    name: str = MISSING
    version: str = MISSING
    default_hp_metric: bool = MISSING
    projector: bool = MISSING
    projector_max_points: int = MISSING
    distance_histograms: bool = MISSING
    worst_errors: bool = MISSING
    worst_errors_k: int = MISSING
    curves: bool = MISSING


@dataclass
class CSVLoggerConf(LoggerConf):
    name: str = MISSING
    version: str = MISSING


@dataclass
class MLFlowConf(LoggerConf):
    experiment_name: str = MISSING
    run_name: str = MISSING
    tracking_uri: str | None = MISSING


@dataclass
class WandbConf(LoggerConf):
    project: str = MISSING
    name: str = MISSING
    offline: bool = MISSING
    settings: Any = MISSING


@dataclass
class ExtrasConf:
    ignore_warnings: bool = MISSING
    traceback: bool = MISSING


# --- the run -----------------------------------------------------------------------------------
@dataclass
class EmbeddingConf:
    dim: int = MISSING
    l2_normalize: bool = MISSING
    distance: str = MISSING


@dataclass
class EvaluationConf:
    recall_ks: list[int] = MISSING
    one_shot_ways: list[int] = MISSING
    one_shot_trials: int = MISSING
    chunk_size: int | None = MISSING
    rerank_k: int | None = MISSING
    fmr_targets: list[float] = MISSING
    monitor: str = MISSING
    mode: str = MISSING
    patience: int | None = MISSING
    test_on: str = MISSING


@dataclass
class CheckpointConf:
    every_n_steps: int = MISSING


@dataclass
class SpeedConf:
    channels_last: bool = MISSING
    compile: bool = MISSING
    compile_mode: str = MISSING
    keep_freed_memory: bool = MISSING


@dataclass
class GuardConf:
    max_loss: float | None = MISSING
    max_weight_norm: float | None = MISSING


@dataclass
class TrainConf:
    trainer: Any = MISSING  # first: other groups interpolate its values (scheduler.T_max)
    data: Any = MISSING
    augmentation: Any = None
    backbone: Any = MISSING
    normalization: Any = MISSING
    loss: Any = MISSING
    sampler: Any = MISSING
    model: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = None
    logger: Any = None
    embedding: EmbeddingConf = MISSING
    evaluation: EvaluationConf = MISSING
    checkpoint: CheckpointConf = MISSING
    guard: GuardConf = MISSING
    speed: SpeedConf = MISSING
    extras: ExtrasConf = MISSING
    seed: int = MISSING
    name: str = MISSING
    resume: str | None = MISSING
    trust: bool = MISSING


SCHEMAS = {
    "data": {
        "synthetic": SyntheticConf,
        "folder": FolderConf,
        "csv": CSVConf,
        "torchvision": TorchvisionConf,
    },
    "augmentation": {"augmentation": AugmentationConf},
    "sampler": {"pair": PairSamplerConf, "triplet": Target, "pk": PKSamplerConf},
    "model": {"model": Target},
    "backbone": {
        "convnet": ConvNetConf,
        "mlp": MLPConf,
        "two_branch": TwoBranchConf,
        "resnet18": ResNet18Conf,
        "koch": KochConf,
    },
    "normalization": {"normalization": Target, "groupnorm": GroupNormConf},
    "optimizer": {"adam": AdamConf, "adagrad": AdagradConf, "sgd": SGDConf},
    "scheduler": {"cosine": CosineConf, "step": StepConf},
    "trainer": {"trainer": TrainerConf},
    "logger": {
        "tensorboard": TensorBoardConf,
        "csv": CSVLoggerConf,
        "mlflow": MLFlowConf,
        "wandb": WandbConf,
    },
}


def loss_schemas() -> dict[str, type]:
    """The schemas the loss modules declare beside their classes (each module's `SCHEMAS`), so
    that a new loss is one Python file in siamese/losses/ and one YAML in src/siamese/conf/loss/."""
    from siamese import losses

    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(losses.__path__):
        module = importlib.import_module(f"{losses.__name__}.{info.name}")
        found |= getattr(module, "SCHEMAS", {})
    return found


def register() -> None:
    """Store every schema as `schema/<group>/<name>`, and the top-level one as `schema/train`."""
    register_resolvers()
    cs = ConfigStore.instance()
    for group, schemas in (SCHEMAS | {"loss": loss_schemas()}).items():
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)
    cs.store(group="schema", name="train", node=TrainConf)
