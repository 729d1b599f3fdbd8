"""Typed schemas of every config group, registered in Hydra's ConfigStore.

Each YAML option extends its schema (`defaults: [/schema/<group>/<name>@_here_]`), so a wrong type or
an unknown key fails at composition with the full key; `validate` then checks value ranges before any
work starts, with errors that name the key.
"""

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


class ConfigValueError(ValueError):
    """A config value out of its range; the message starts with the full key."""


class Checked:
    """Range rules, run by `validate`: each raises naming the key relative to its group."""

    positive: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()

    def check(self) -> None:
        for name in self.positive:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigValueError(f"{name} must be > 0, got {value}")
        for name in self.non_negative:
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigValueError(f"{name} must be >= 0, got {value}")


# --- data -------------------------------------------------------------------------------------
@dataclass
class SyntheticSourceConf(Checked):
    _target_: str = "siamese.data.SyntheticGlyphs"
    num_classes: int = 100
    samples_per_class: int = 40
    image_size: int = 32
    strokes: int = 3
    palette_size: int = 6
    rotation: float = 0.3
    scale: float = 0.2
    translation: float = 0.15
    stroke_jitter: float = 0.06
    colour_jitter: float = 0.12
    noise: float = 0.08
    seed: int = 0
    positive = ("num_classes", "samples_per_class", "image_size", "strokes", "palette_size")
    non_negative = ("rotation", "scale", "translation", "stroke_jitter", "colour_jitter", "noise")


@dataclass
class SplitConf(Checked):
    train: float = 0.6
    val: float = 0.2
    test: float = 0.2
    positive = ("train", "val", "test")


@dataclass
class DataConf(Checked):
    _target_: str = "siamese.data.SiameseDataModule"
    source: Any = MISSING
    channels: int = 3
    image_size: int = 32
    batch_size: int = 64
    steps_per_epoch: int = 100
    eval_batch_size: int = 512
    eval_pairs: int = 2000
    split: SplitConf = field(default_factory=SplitConf)
    split_by: str = "classes"
    split_seed: int = 0
    positive = (
        "channels",
        "image_size",
        "batch_size",
        "steps_per_epoch",
        "eval_batch_size",
        "eval_pairs",
    )

    def check(self) -> None:
        super().check()
        if self.split_by not in ("classes", "samples"):
            raise ConfigValueError(
                f"split_by must be 'classes' or 'samples', got {self.split_by!r}"
            )


# --- samplers and models (brought by the loss) -------------------------------------------------
@dataclass
class PairSamplerConf(Checked):
    _target_: str = "siamese.data.PairSampler"
    _partial_: bool = True
    positive_fraction: float = 0.5

    def check(self) -> None:
        if not 0 < self.positive_fraction < 1:
            raise ConfigValueError(
                f"positive_fraction must be in (0, 1), got {self.positive_fraction}"
            )


@dataclass
class TripletSamplerConf(Checked):
    _target_: str = "siamese.data.TripletSampler"
    _partial_: bool = True


@dataclass
class PKSamplerConf(Checked):
    _target_: str = "siamese.data.PKSampler"
    _partial_: bool = True
    samples_per_class: int = 4

    def check(self) -> None:
        if self.samples_per_class < 2:
            raise ConfigValueError(f"samples_per_class must be >= 2, got {self.samples_per_class}")


@dataclass
class ModelConf(Checked):
    _target_: str = MISSING


# --- backbones ---------------------------------------------------------------------------------
@dataclass
class ConvNetConf(Checked):
    _target_: str = "siamese.models.backbones.ConvNet"
    in_channels: int = "${data.channels}"  # type: ignore[assignment]
    widths: list[int] = field(default_factory=lambda: [32, 64, 128])
    normalization: str = "${normalization.layer}"


@dataclass
class MLPConf(Checked):
    _target_: str = "siamese.models.backbones.MLP"
    in_features: int = "${mul:${data.channels},${data.image_size},${data.image_size}}"  # type: ignore
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    activations: list[str] = field(default_factory=lambda: ["sigmoid", "tanh"])
    normalization: str = "${normalization.layer}"


@dataclass
class TwoBranchConf(Checked):
    _target_: str = "siamese.models.backbones.TwoBranch"
    in_channels: int = "${data.channels}"  # type: ignore[assignment]
    spatial_widths: list[int] = field(default_factory=lambda: [32, 64, 128])
    colour_hidden: int = 64
    fused: int = 128
    normalization: str = "${normalization.layer}"
    positive = ("colour_hidden", "fused")


@dataclass
class ResNet18Conf(Checked):
    _target_: str = "siamese.models.backbones.ResNet18"
    in_channels: int = "${data.channels}"  # type: ignore[assignment]
    weights: str | None = None
    normalization: str = "${normalization.layer}"


@dataclass
class NormalizationConf(Checked):
    layer: str = "batchnorm"

    def check(self) -> None:
        from siamese.models.normalization import NORMALIZATIONS

        if self.layer not in NORMALIZATIONS:
            raise ConfigValueError(f"layer must be one of {NORMALIZATIONS}, got {self.layer!r}")


@dataclass
class EmbeddingConf(Checked):
    dim: int = 64
    l2_normalize: bool = False
    distance: str = "euclidean"
    positive = ("dim",)

    def check(self) -> None:
        super().check()
        from siamese.distances import DISTANCES

        if self.distance not in DISTANCES:
            raise ConfigValueError(
                f"distance must be 'euclidean' or 'cosine', got {self.distance!r}"
            )


# --- losses ------------------------------------------------------------------------------------
@dataclass
class ContrastiveConf(Checked):
    _target_: str = "siamese.losses.ContrastiveLoss"
    margin: float = 1.0
    distance: str = "${embedding.distance}"
    positive = ("margin",)


@dataclass
class TripletConf(Checked):
    _target_: str = "siamese.losses.TripletLoss"
    margin: float = 1.0
    squared_distance: bool = True
    squared_hinge: bool = False
    distance: str = "${embedding.distance}"
    positive = ("margin",)


@dataclass
class MinedTripletConf(TripletConf):
    _target_: str = MISSING


@dataclass
class ContrastiveAllPairsConf(ContrastiveConf):
    _target_: str = "siamese.losses.ContrastiveAllPairsLoss"
    hard_pairs: bool = False


@dataclass
class SDRNConf(Checked):
    _target_: str = "siamese.losses.SDRNLoss"
    num_classes: int | None = None  # None: the training split's class count
    embedding_dim: int = "${embedding.dim}"  # type: ignore[assignment]
    margin: float = 1.0
    lam: float = 1.0
    gamma: float = 0.0
    hidden_dim: int = 64
    distance: str = "${embedding.distance}"
    positive = ("margin", "hidden_dim")
    non_negative = ("lam", "gamma")


# --- optimization ------------------------------------------------------------------------------
@dataclass
class OptimizerConf(Checked):
    _target_: str = MISSING
    _partial_: bool = True
    lr: float = 1e-3
    weight_decay: float = 0.0
    positive = ("lr",)
    non_negative = ("weight_decay",)


@dataclass
class AdamConf(OptimizerConf):
    _target_: str = "torch.optim.Adam"
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])


@dataclass
class AdamWConf(AdamConf):
    _target_: str = "torch.optim.AdamW"
    weight_decay: float = 0.01


@dataclass
class AdagradConf(OptimizerConf):
    _target_: str = "torch.optim.Adagrad"
    lr: float = 0.01
    lr_decay: float = 0.0
    non_negative = ("weight_decay", "lr_decay")


@dataclass
class SGDConf(OptimizerConf):
    _target_: str = "torch.optim.SGD"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    non_negative = ("weight_decay", "momentum")


@dataclass
class CosineConf(Checked):
    _target_: str = "torch.optim.lr_scheduler.CosineAnnealingLR"
    _partial_: bool = True
    T_max: int = "${trainer.max_epochs}"  # type: ignore[assignment]
    eta_min: float = 0.0
    positive = ("T_max",)


@dataclass
class StepConf(Checked):
    _target_: str = "torch.optim.lr_scheduler.StepLR"
    _partial_: bool = True
    step_size: int = 5
    gamma: float = 0.5
    positive = ("step_size", "gamma")


# --- trainer and logger ------------------------------------------------------------------------
@dataclass
class TrainerConf(Checked):
    _target_: str = "pytorch_lightning.Trainer"
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: Any = "32-true"
    max_epochs: int = 10
    log_every_n_steps: int = 25
    check_val_every_n_epoch: int = 1
    gradient_clip_val: float | None = None
    deterministic: bool = False
    benchmark: bool = False
    enable_progress_bar: bool = True
    enable_model_summary: bool = False
    num_sanity_val_steps: int = 0
    limit_train_batches: Any = None
    positive = ("max_epochs", "log_every_n_steps", "check_val_every_n_epoch", "num_nodes")
    non_negative = ("gradient_clip_val", "num_sanity_val_steps")


@dataclass
class TensorBoardConf(Checked):
    _target_: str = "pytorch_lightning.loggers.TensorBoardLogger"
    name: str = "tensorboard"
    version: str = ""
    default_hp_metric: bool = False


@dataclass
class EvaluationConf(Checked):
    recall_ks: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    one_shot_ways: list[int] = field(default_factory=lambda: [5, 20])
    one_shot_trials: int = 1000
    chunk_size: int = 1024
    monitor: str = "val/p_at_1"
    mode: str = "max"
    test_on: str = "best"
    positive = ("one_shot_trials", "chunk_size")

    def check(self) -> None:
        super().check()
        if not self.recall_ks or any(k < 1 for k in self.recall_ks):
            raise ConfigValueError(
                f"recall_ks must be >= 1 each, and at least one, got {self.recall_ks}"
            )
        if any(n < 2 for n in self.one_shot_ways):
            raise ConfigValueError(f"one_shot_ways must all be >= 2, got {self.one_shot_ways}")
        logged = {"p_at_1", "map_at_r", "auc", "eer", "accuracy"}
        logged |= {f"recall_at_{k}" for k in self.recall_ks}
        logged |= {f"one_shot_{n}way" for n in self.one_shot_ways}
        if self.monitor not in {f"val/{name}" for name in logged}:
            raise ConfigValueError(
                f"monitor must be one of the val metrics, {sorted(f'val/{m}' for m in logged)}, "
                f"got {self.monitor!r}"
            )
        if self.mode not in ("max", "min"):
            raise ConfigValueError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if self.test_on not in ("best", "last"):
            raise ConfigValueError(f"test_on must be 'best' or 'last', got {self.test_on!r}")


@dataclass
class TrainConf(Checked):
    trainer: Any = MISSING  # first: other groups interpolate its values (scheduler.T_max)
    data: Any = MISSING
    backbone: Any = MISSING
    normalization: Any = MISSING
    loss: Any = MISSING
    sampler: Any = MISSING
    model: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = None
    logger: Any = None
    embedding: EmbeddingConf = field(default_factory=EmbeddingConf)
    evaluation: EvaluationConf = field(default_factory=EvaluationConf)
    seed: int = 0
    name: str = "default"


SCHEMAS = {
    "data": {"synthetic": DataConf, "synthetic_source": SyntheticSourceConf},
    "sampler": {"pair": PairSamplerConf, "triplet": TripletSamplerConf, "pk": PKSamplerConf},
    "model": {"pair": ModelConf, "triplet": ModelConf},
    "backbone": {
        "convnet": ConvNetConf,
        "mlp": MLPConf,
        "two_branch": TwoBranchConf,
        "resnet18": ResNet18Conf,
    },
    "normalization": {"layer": NormalizationConf},
    "loss": {
        "contrastive": ContrastiveConf,
        "triplet": TripletConf,
        "sdrn": SDRNConf,
        "mined_triplet": MinedTripletConf,
        "contrastive_all_pairs": ContrastiveAllPairsConf,
    },
    "optimizer": {"adam": AdamConf, "adamw": AdamWConf, "adagrad": AdagradConf, "sgd": SGDConf},
    "scheduler": {"cosine": CosineConf, "step": StepConf},
    "trainer": {"trainer": TrainerConf},
    "logger": {"tensorboard": TensorBoardConf},
}


def register() -> None:
    """Store every schema as `schema/<group>/<name>`, and the top-level one as `schema/train`."""
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda *xs: _product(xs))
    cs = ConfigStore.instance()
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)
    cs.store(group="schema", name="train", node=TrainConf)


def _product(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def validate(cfg: DictConfig) -> None:
    """Check every value range of the composed config, naming the full key of the first bad one."""
    _check(OmegaConf.to_object(cfg), "")


def _check(node: Any, path: str) -> None:
    if isinstance(node, Checked):
        try:
            node.check()
        except ConfigValueError as err:
            raise ConfigValueError(f"{path}{err}") from None
    if is_dataclass(node):
        for f in fields(node):
            _check(getattr(node, f.name), f"{path}{f.name}.")
    elif isinstance(node, dict):
        for key, value in node.items():
            _check(value, f"{path}{key}.")
