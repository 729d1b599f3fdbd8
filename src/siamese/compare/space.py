"""A search space in Hydra's override syntax as Optuna distributions, and a trial's values back as
overrides.

    optimizer.lr: tag(log, interval(1e-4, 1e-2))  -> FloatDistribution(1e-4, 1e-2, log=True)
    loss.lam: interval(0.0, 2.0)                   -> FloatDistribution(0.0, 2.0)
    data.images_per_step: choice(96, 192, 384)     -> CategoricalDistribution((96, 192, 384))
    model.depth: range(2, 8, 2)                    -> IntDistribution(2, 6, step=2): Hydra's range
                                                      ends before its stop, so does the distribution
    a=1,2 (a comma list)                           -> CategoricalDistribution((1, 2))

Hydra's interval has float bounds (interval(1, 5) is 1.0 to 5.0), so an interval is always a float.
"""

from dataclasses import dataclass, field

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, Override, RangeSweep, Transformer
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)


@dataclass
class Space:
    """What the search varies (`params`: key -> its override text, `distributions`: key -> its
    Optuna distribution, in the order given) and what every trial shares (`fixed`: overrides)."""

    params: dict[str, str] = field(default_factory=dict)
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)

    def overrides(self, values: dict) -> list[str]:
        """A trial's overrides: its value of each searched key, then the shared ones."""
        return [*(f"{key}={values[key]}" for key in self.distributions), *self.fixed]


def distribution(override: Override) -> BaseDistribution:
    value = override.value()
    if isinstance(value, Glob):  # config option names: nothing Optuna can draw
        raise ValueError(
            f"{override.input_line}: the tune sweeper searches interval(...), "
            "tag(log, interval(...)), choice(...), range(...) or a comma list"
        )
    if override.is_choice_sweep() or (isinstance(value, RangeSweep) and value.shuffle):
        return CategoricalDistribution(
            list(override.sweep_iterator(transformer=Transformer.encode))
        )
    if override.is_range_sweep():
        values = list(override.sweep_iterator())
        if not values:
            raise ValueError(f"{override.input_line}: the range holds no value")
        if all(isinstance(v, int) for v in values):
            return IntDistribution(values[0], values[-1], step=int(value.step))
        return FloatDistribution(values[0], values[-1], step=float(value.step))
    return FloatDistribution(value.start, value.end, log="log" in value.tags)  # an interval


def search_space(params: dict | None, arguments: list[str], dropped: tuple[str, ...] = ()) -> Space:
    """hydra.sweeper.params, then the command line's overrides (a later key wins: a fixed value
    takes the key out of the space, a sweep puts it in); keys in `dropped` are left out."""
    lines = [*(f"{k}={v}" for k, v in (params or {}).items()), *arguments]
    space = Space()
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        if key in dropped:
            continue
        space.params.pop(key, None)
        space.distributions.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            space.params[key] = override.get_value_string()
            space.distributions[key] = distribution(override)
        else:
            fixed[key] = override.input_line
    space.fixed = list(fixed.values())
    return space
