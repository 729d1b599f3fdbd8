"""What the comparison controls, generated from the methods' resolved configs: the keys equal in both
(grouped by section), the keys that differ, the keys only one method has, and the tuned keys."""

from dataclasses import dataclass

# differ by design between runs of one method, or only name a run: not a property of a method
IGNORED = {"seed", "name"}


def flatten(config: dict, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    out: dict[str, object] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out |= flatten(value, f"{path}.")
        else:
            out[path] = value
    return out


@dataclass
class Controls:
    equal: dict[str, list[str]]  # section -> its keys equal in both configs
    differ: dict[str, tuple[object, object]]  # key -> (value in a, value in b)
    only_a: dict[str, object]
    only_b: dict[str, object]
    tuned_both: list[str]  # searched for both methods over the same range
    tuned_own: list[str]  # searched for both, each over its own range
    tuned_only_a: list[str]
    tuned_only_b: list[str]
    margin_units: tuple[str | None, str | None] = (None, None)


def controls(config_a: dict, config_b: dict, space_a=None, space_b=None) -> Controls:
    """space_a, space_b: each method's search space, key -> range (hydra.sweeper.params)."""
    a = {k: v for k, v in flatten(config_a).items() if k not in IGNORED}
    b = {k: v for k, v in flatten(config_b).items() if k not in IGNORED}
    equal: dict[str, list[str]] = {}
    for key in sorted(a.keys() & b.keys()):
        if a[key] == b[key]:
            equal.setdefault(key.split(".", 1)[0], []).append(key)
    differ = {k: (a[k], b[k]) for k in sorted(a.keys() & b.keys()) if a[k] != b[k]}
    space_a, space_b = dict(space_a or {}), dict(space_b or {})
    both = sorted(space_a.keys() & space_b.keys())
    return Controls(
        equal,
        differ,
        {k: a[k] for k in sorted(a.keys() - b.keys())},
        {k: b[k] for k in sorted(b.keys() - a.keys())},
        [k for k in both if str(space_a[k]) == str(space_b[k])],
        [k for k in both if str(space_a[k]) != str(space_b[k])],
        sorted(space_a.keys() - space_b.keys()),
        sorted(space_b.keys() - space_a.keys()),
        (margin_unit(a), margin_unit(b)),
    )


def margin_unit(flat: dict[str, object]) -> str | None:
    """The unit of loss.margin: d² when the loss squares its distances, else d."""
    if "loss.margin" not in flat:
        return None
    return "d²" if flat.get("loss.squared_distance") is True else "d"


def _value(v: object) -> str:
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def control_lines(c: Controls, label_a: str, label_b: str) -> list[str]:
    """The report's list: controlled first, then not controlled."""
    lines = ["**Controlled** (equal in both methods' resolved configs):", ""]
    for section, keys in sorted(c.equal.items()):
        not_equal = [k for k in (*c.differ, *c.only_a, *c.only_b) if k.split(".", 1)[0] == section]
        note = "all keys" if not not_equal else "all but the keys below"
        lines.append(f"- `{section}`: {len(keys)} key(s) equal ({note})")
    if c.tuned_both:
        lines.append(
            "- tuned for both over the same range: " + ", ".join(f"`{k}`" for k in c.tuned_both)
        )
    if c.tuned_own:
        lines.append(
            "- tuned for both, each over its own range: " + ", ".join(f"`{k}`" for k in c.tuned_own)
        )
    lines += ["", "**Not controlled** (they differ between the methods' best configurations):", ""]
    for key, (va, vb) in c.differ.items():
        lines.append(f"- `{key}`: {label_a} `{_value(va)}`, {label_b} `{_value(vb)}`")
    unit_a, unit_b = c.margin_units
    if unit_a and unit_b and unit_a != unit_b:
        lines.append(
            f"- `loss.margin` is in {unit_a} units for {label_a} and {unit_b} for {label_b}: "
            "equal numbers would not be equal margins"
        )
    for label, only in ((label_a, c.only_a), (label_b, c.only_b)):
        if only:
            keys = ", ".join(f"`{k}={_value(v)}`" for k, v in only.items())
            lines.append(f"- only {label} has: {keys}")
    for label, tuned in ((label_a, c.tuned_only_a), (label_b, c.tuned_only_b)):
        if tuned:
            lines.append(f"- tuned for {label} only: " + ", ".join(f"`{k}`" for k in tuned))
    return lines
