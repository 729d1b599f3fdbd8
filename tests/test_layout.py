"""The package's layout: every folder one stage of a run, imports running from a later stage to
an earlier one only, no import cycle, modules and functions of a readable size."""

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "src" / "siamese"
# the stages, earliest first: a module may import from its own stage and earlier ones
STAGES = [
    "conf",  # the YAML configs' package: no code
    "core",
    "data",
    "losses",
    "models",
    "metrics",
    "config",
    "run",
    "train",
    "inference",
    "gallery",
    "keyvalue",
    "export",
    "evaluate",
    "verify",
    "search",
    "index",
    "serve",
    "benchmark",
    "report",
    "compare",
    "cli",  # imports a command's module only when it is chosen
    "commands",  # the __main__ of a package: what a user runs, free to use every stage
]
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def stage(module: str) -> str:
    """`siamese.run.build` -> "run"; `siamese.verify` -> "verify"."""
    return "commands" if module.endswith(".__main__") else module.split(".")[1]


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("siamese."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("siamese.")}
    return found


def name_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_stage_is_listed():
    assert {stage(name_of(p)) for p in modules() if name_of(p) != "siamese"} <= set(STAGES)


@pytest.mark.parametrize("path", modules(), ids=lambda p: name_of(p))
def test_imports_run_from_later_stages_to_earlier_ones(path):
    me = name_of(path)
    if me == "siamese":
        return
    later = [m for m in imports(path) if STAGES.index(stage(m)) > STAGES.index(stage(me))]
    assert not later, f"{me} imports a later stage: {later}"


def test_no_import_cycle():
    graph = {name_of(p): {m for m in imports(p)} for p in modules()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError(" -> ".join([*path, node, nxt]))
            if nxt in graph and not state.get(nxt):
                visit(nxt, [*path, node])
        state[node] = 2

    for node in graph:
        if not state.get(node):
            visit(node, [])


@pytest.mark.parametrize("path", modules(), ids=lambda p: name_of(p))
def test_modules_and_functions_stay_readable(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{name_of(path)} is over {MAX_MODULE_LINES}"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{name_of(path)}.{node.name}: {length} lines"
