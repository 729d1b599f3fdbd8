"""Value checks that name the full config key, before any work starts.

The project's own classes check their arguments in their constructors; `build_node` instantiates a
config node and puts the node's key in front of such an error. The keys that go to other libraries
(Lightning's Trainer, torch's optimizers and schedulers) or to no single object (`embedding`,
`evaluation`, `speed`) are checked here, from the composed config, by `check_config`.
"""

import math
import re
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from siamese.core.distances import DISTANCES
from siamese.models.speed import COMPILE_MODES


class ConfigValueError(ValueError):
    """A config value out of its range; the message starts with the full key."""


def positive(value: Any) -> str | None:
    # `not value > 0` also refuses NaN; inf is refused as no learning rate or count is infinite
    if not (value > 0 and math.isfinite(value)):
        return f"must be > 0, got {value}"
    return None


def non_negative(value: Any) -> str | None:
    if not (value >= 0 and math.isfinite(value)):
        return f"must be >= 0, got {value}"
    return None


def one_of(*allowed: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"must be one of {allowed}, got {value!r}"

    return check


# keys of other libraries' objects or of no object; absent keys (another option) are skipped
RULES: dict[str, Callable[[Any], str | None]] = {
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
    "checkpoint.every_n_steps": positive,
    "embedding.distance": one_of(*DISTANCES),
    "evaluation.mode": one_of("max", "min"),
    "evaluation.test_on": one_of("best", "last"),
    "speed.compile_mode": one_of(*COMPILE_MODES),
}


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigValueError naming an added key nothing reads (`+foo=1`) or the first key whose
    value is out of range."""
    check_known_keys(cfg)
    for key, rule in RULES.items():
        group, _, name = key.partition(".")
        node = cfg.get(group)
        if node is None or name not in node or node[name] is None:
            continue
        problem = rule(node[name])
        if problem:
            raise ConfigValueError(f"{key} {problem}")
    monitored = {f"val/{m}" for m in logged_metrics(cfg)}
    if cfg.evaluation.monitor not in monitored:
        raise ConfigValueError(
            f"evaluation.monitor must be one of the val metrics, {sorted(monitored)}, "
            f"got {cfg.evaluation.monitor!r}"
        )


def check_known_keys(cfg: DictConfig) -> None:
    """`+key=value` adds a key even where the schema has none; at the top level and in the
    groups that build no object (embedding, evaluation) nothing would read it."""
    from siamese.config.schemas import EmbeddingConf, EvaluationConf, SpeedConf, TrainConf

    for prefix, node, schema in (
        ("", cfg, TrainConf),
        ("embedding.", cfg.embedding, EmbeddingConf),
        ("evaluation.", cfg.evaluation, EvaluationConf),
        ("speed.", cfg.speed, SpeedConf),
    ):
        known = {f.name for f in fields(schema)}
        unknown = [k for k in node if k not in known and not (prefix == "" and k == "hydra")]
        if unknown:
            raise ConfigValueError(
                f"{prefix}{unknown[0]} is not a setting (known: {', '.join(sorted(known))}): "
                "nothing would read it"
            )


def logged_metrics(cfg: DictConfig) -> set[str]:
    """The metric names (without stage) that scoring a split logs with these settings."""
    names = {"p_at_1", "map_at_r", "auc", "eer", "accuracy"}
    names |= {f"recall_at_{k}" for k in cfg.evaluation.recall_ks}
    return names | {f"one_shot_{n}way" for n in cfg.evaluation.one_shot_ways}


_FULL_KEY = re.compile(r"full_key: (\S+)")


def build_node(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """`instantiate(node, **kwargs)`; a constructor's ValueError ("margin must be > 0, got -1")
    comes back as a ConfigValueError naming the full key ("loss.margin must be > 0, got -1")."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if not isinstance(cause, ValueError):
            raise
        found = _FULL_KEY.search(str(err))
        where = found.group(1) if found else key
        message = str(cause)
        first = message.split(" ", 1)[0]
        if isinstance(cause, ConfigValueError) or "." in first:
            raise ConfigValueError(message) from cause  # it already names its key
        target = _node_at(node, key, where)
        if target is not None and first in target:
            raise ConfigValueError(f"{where}.{message}") from cause
        raise ConfigValueError(f"{where}: {message}") from cause


def _node_at(node: DictConfig, key: str, where: str) -> DictConfig | None:
    """The sub-node of `node` (whose key is `key`) at the full key `where`."""
    if where == key:
        return node
    if not where.startswith(key + "."):
        return None
    sub: Any = node
    for part in where[len(key) + 1 :].split("."):
        sub = sub.get(part) if isinstance(sub, DictConfig) else None
    return sub if isinstance(sub, DictConfig) else None
