"""Hydra override strings (`key=value`, `+a.b=1`, `++a=1`, `~a`) as the code reads and edits them:
the key one sets, its value, and the lists a run, a sweep or a search is given."""


def override_key(override: str) -> str:
    """`+a.b=1` -> `a.b`: the key an override sets, whatever its +, ++ or ~ prefix."""
    return override.split("=", 1)[0].lstrip("+~")


def override_value(override: str) -> str:
    """`a.b=1` -> `1`; "" for one without a value (`~a.b`)."""
    return override.split("=", 1)[1] if "=" in override else ""


def is_hydra(override: str) -> bool:
    """hydra.* and hydra/<group>=... overrides: launcher settings, not part of a job's config."""
    key = override_key(override)
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def split_seed(overrides: list[str] | None) -> tuple[tuple[str, ...] | None, str | None]:
    """(the overrides but the seed, sorted by key; the seed's value, the last one given), so that
    the runs of one configuration over several seeds share their first part; (None, None) when
    the overrides are unknown."""
    if overrides is None:
        return None, None
    seeds = [override_value(o) for o in overrides if override_key(o) == "seed"]
    cell = sorted((o for o in overrides if override_key(o) != "seed"), key=override_key)
    return tuple(cell), (seeds[-1] if seeds else None)


def replace_value(overrides, key: str, value: object) -> list[str]:
    """The overrides with `key=value` in place of any override of `key`, last."""
    return [*(o for o in overrides if override_key(o) != key), f"{key}={value}"]
