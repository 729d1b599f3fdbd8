"""Checks of the composed config that no constructor of the project makes, before any work starts.

The project's own classes check their arguments (siamese.core.errors), and assembly names the full
key. The keys that go to other libraries (Lightning's Trainer, torch's optimizers and schedulers)
or to no single object (`embedding`, `evaluation`, `checkpoint`, `speed`) are checked here, by
their full key, any depth.
"""

from collections.abc import Callable
from dataclasses import fields
from functools import partial
from typing import Any

from omegaconf import DictConfig, OmegaConf

from siamese.config.schemas import (
    CheckpointConf,
    EmbeddingConf,
    EvaluationConf,
    ExtrasConf,
    GuardConf,
    SpeedConf,
    TrainConf,
)
from siamese.core.distances import DISTANCES
from siamese.core.errors import ArgumentError, ConfigValueError, non_negative, one_of, positive
from siamese.models.speed import COMPILE_MODES

Rule = Callable[[str, Any], Any]  # (full key, value): raises ArgumentError naming the key

# keys of other libraries' objects or of no object; a key absent from the config (another option
# chose no such key) or null is skipped; tests check that each exists in some option
RULES: dict[str, Rule] = {
    "trainer.max_epochs": positive,
    "trainer.log_every_n_steps": positive,
    "trainer.check_val_every_n_epoch": positive,
    "trainer.num_nodes": positive,
    "trainer.gradient_clip_val": non_negative,
    "trainer.num_sanity_val_steps": non_negative,
    "optimizer.lr": positive,
    "optimizer.weight_decay": non_negative,
    "optimizer.momentum": non_negative,
    "optimizer.lr_decay": non_negative,
    "scheduler.T_max": positive,
    "scheduler.eta_min": non_negative,
    "scheduler.step_size": positive,
    "scheduler.gamma": positive,
    "embedding.dim": positive,
    "embedding.distance": partial(one_of, allowed=DISTANCES),
    "checkpoint.every_n_steps": positive,
    "evaluation.mode": partial(one_of, allowed=("max", "min")),
    "evaluation.test_on": partial(one_of, allowed=("best", "last")),
    "evaluation.patience": positive,
    "speed.compile_mode": partial(one_of, allowed=COMPILE_MODES),
}

# the groups that build no object: a key added with `+group.key=` would be read by nothing
PLAIN_GROUPS = {
    "": TrainConf,
    "embedding": EmbeddingConf,
    "evaluation": EvaluationConf,
    "checkpoint": CheckpointConf,
    "guard": GuardConf,
    "speed": SpeedConf,
    "extras": ExtrasConf,
}


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigValueError naming an added key nothing reads (`+foo=1`) or the first key whose
    value is out of range."""
    check_known_keys(cfg)
    for key, rule in RULES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        try:
            rule(key, value)
        except ArgumentError as err:
            raise ConfigValueError(str(err)) from None
    monitored = {f"val/{m}" for m in logged_metrics(cfg)}
    if cfg.evaluation.monitor not in monitored:
        raise ConfigValueError(
            f"evaluation.monitor must be one of the val metrics, {sorted(monitored)}, "
            f"got {cfg.evaluation.monitor!r}"
        )


def check_known_keys(cfg: DictConfig) -> None:
    """`+key=value` adds a key even where the schema has none; at the top level and in the
    groups that build no object nothing would read it."""
    for group, schema in PLAIN_GROUPS.items():
        node = cfg if not group else cfg[group]
        known = {f.name for f in fields(schema)}
        unknown = [k for k in node if k not in known and not (group == "" and k == "hydra")]
        if unknown:
            prefix = f"{group}." if group else ""
            raise ConfigValueError(
                f"{prefix}{unknown[0]} is not a setting (known: {', '.join(sorted(known))}): "
                "nothing would read it"
            )


def logged_metrics(cfg: DictConfig) -> set[str]:
    """The metric names (without stage) that scoring a split logs with these settings."""
    names = {"p_at_1", "map_at_r", "auc", "eer", "accuracy"}
    names |= {f"recall_at_{k}" for k in cfg.evaluation.recall_ks}
    return names | {f"one_shot_{n}way" for n in cfg.evaluation.one_shot_ways}
