"""Errors that name what is wrong, and the range checks every class of the project uses.

The convention: a class checks its own arguments and names the argument (`margin must be > 0,
got -1.0`); whoever builds it from the config puts the node's path in front (`loss.margin must be
> 0, got -1.0`, see `siamese.run.build.build_node`). Checks of keys that reach other libraries
name the full key themselves (`siamese.config.checks`).

Errors in what the user gave (a config value, an argument, a data file or folder) are `UserError`s:
their message names the key, file, line or class and says what to do, so a command prints the
message alone. Any other exception is a bug in the project and keeps its traceback.
"""

import math
from collections.abc import Iterable
from typing import Any


class UserError(Exception):
    """Marks an error in what the user gave; the message says what is wrong and what to do."""


class ConfigValueError(UserError, ValueError):
    """A config value is wrong; the message starts with its full key."""


class DataError(UserError, ValueError):
    """The data cannot be used as it is; the message names the file, line or class."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder a run reads does not exist; the message names it and how to get it."""


class ArgumentError(UserError, ValueError):
    """An argument of a project class is out of its range: `argument` names it (as the class's
    signature does), `problem` says what is wrong."""

    def __init__(self, argument: str, problem: str):
        super().__init__(_join(argument, problem))
        self.argument, self.problem = argument, problem

    def at(self, node: str) -> ConfigValueError:
        """The same error for the config node at `node` (e.g. "loss"): its full key in front."""
        return ConfigValueError(_join(f"{node}.{self.argument}", self.problem))


def _join(key: str, problem: str) -> str:
    """`margin must be > 0`, or `root='x' does not exist` for a problem that shows the value."""
    return f"{key}{problem}" if problem.startswith("=") else f"{key} {problem}"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def positive(name: str, value: Any) -> Any:
    """value > 0 and finite (no learning rate, margin or count is infinite); NaN is refused too."""
    if not (_number(value) and value > 0 and math.isfinite(value)):
        raise ArgumentError(name, f"must be > 0, got {value!r}")
    return value


def non_negative(name: str, value: Any) -> Any:
    if not (_number(value) and value >= 0 and math.isfinite(value)):
        raise ArgumentError(name, f"must be >= 0, got {value!r}")
    return value


def at_least(name: str, value: Any, low: int) -> int:
    """An integer >= low."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ArgumentError(name, f"must be an integer >= {low}, got {value!r}")
    return value


def in_range(name: str, value: Any, low: float, high: float, closed: bool = True) -> Any:
    """low <= value <= high (closed) or low < value < high (open)."""
    inside = _number(value) and (low <= value <= high if closed else low < value < high)
    if not inside:
        bounds = f"[{low}, {high}]" if closed else f"({low}, {high})"
        raise ArgumentError(name, f"must be in {bounds}, got {value!r}")
    return value


def one_of(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ArgumentError(name, f"must be one of {list(allowed)}, got {value!r}")
    return value
