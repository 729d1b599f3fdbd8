"""`key=value` command lines for the tools that use a trained model (evaluate, verify, search,
index, serve)."""

import sys


class UsageError(SystemExit):
    def __init__(self, message: str, usage: str):
        super().__init__(f"error: {message}\nusage: {usage}")


def parse(
    argv: list[str],
    usage: str,
    keys: dict[str, str | None],
    positional: int = 0,
    free_keys: bool = False,
) -> tuple[dict[str, str], list[str]]:
    """`keys` maps each known key to its default (None: required). `free_keys` passes unknown
    dotted keys through (config overrides); positional arguments must number exactly `positional`."""
    if any(a in ("-h", "--help") for a in argv):
        print(f"usage: {usage}")
        raise SystemExit(0)
    values, rest, extra = {}, [], {}
    for arg in argv:
        if "=" in arg:
            key, value = arg.split("=", 1)
            if key in keys:
                values[key] = value
            elif free_keys and "." in key:
                extra[key] = value
            else:
                raise UsageError(f"unknown key {key!r} (known: {', '.join(keys)})", usage)
        else:
            rest.append(arg)
    missing = [k for k, default in keys.items() if default is None and k not in values]
    if missing:
        raise UsageError(f"missing {', '.join(f'{k}=...' for k in missing)}", usage)
    if len(rest) != positional:
        raise UsageError(f"expected {positional} file argument(s), got {len(rest)}: {rest}", usage)
    return {**{k: v for k, v in keys.items() if v is not None}, **values, **extra}, rest


def argv() -> list[str]:
    return sys.argv[1:]


def integers(args: dict[str, str], keys: dict[str, int], usage: str) -> dict[str, int]:
    """The values of `keys` as integers of at least their value there; errors name the key."""
    out = {}
    for key, low in keys.items():
        try:
            out[key] = int(args[key])
        except ValueError:
            raise UsageError(f"{key} must be an integer, got {args[key]!r}", usage) from None
        if out[key] < low:
            raise UsageError(f"{key} must be >= {low}, got {out[key]}", usage)
    return out


def boolean(args: dict[str, str], key: str, usage: str) -> bool:
    """A true/false value (in any case: true, True, FALSE ..., or 1/0)."""
    value = args[key].strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise UsageError(f"{key} must be true or false, got {args[key]!r}", usage)
    return value in ("true", "1")
