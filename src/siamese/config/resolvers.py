"""The config's own resolvers: a run's folder name and place, and products of numbers."""

import re
import time
from typing import Any

from omegaconf import OmegaConf

AUTO = "auto"  # resume=auto: a sweep re-run in its folder
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=,+-]*$")


def run_name(name: Any) -> str:
    """`name` as a folder name: letters, digits and . _ = , + - only, so that no name can reach
    outside outputs/ (`a/../../x`) or hide a folder (`.x`)."""
    text = str(name)
    if not _NAME.match(text) or ".." in text:
        raise ValueError(
            f"name={text!r} cannot be part of a folder name: use letters, digits and . _ = , + -"
        )
    return text


def run_dir(resume: Any, default: str) -> str:
    """The run's folder: the one `resume=` names, else a new one (`default`)."""
    if resume in (None, "", AUTO):
        return default
    return str(resume)


def hydra_subdir(resume: Any) -> str:
    """Where Hydra keeps its record of the command: a resumed run's goes beside the original's,
    which stays as it was."""
    if resume in (None, ""):
        return ".hydra"
    return f".hydra/resumed-{time.strftime('%Y-%m-%d_%H-%M-%S')}"


def _product(*values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def register_resolvers() -> None:
    for name, fn in (
        ("run_name", run_name),
        ("run_dir", run_dir),
        ("hydra_subdir", hydra_subdir),
        ("mul", _product),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
