"""`siamese COMMAND [ARGS ...]`: every tool of the package as one command on PATH (pip installs it
from pyproject's [project.scripts]); `python -m siamese COMMAND ...` is the same.

`siamese COMMAND ARGS` runs what `python -m MODULE ARGS` runs, MODULE the command's own module
below; `siamese COMMAND --help` shows its arguments. Nothing is imported before a command is
chosen, so `siamese verify model=x.onnx ...` still needs neither Lightning nor Hydra."""

import difflib
import importlib
import os
import sys

# command: (the module whose main() runs it, what it does); a new command is one line here
COMMANDS = {
    "train": ("siamese.train", "train a model: Hydra overrides group=option key=value, -m sweeps"),
    "evaluate": ("siamese.evaluate", "re-score a checkpoint, optionally with other data.* keys"),
    "verify": ("siamese.verify", "are two images of the same class?"),
    "search": ("siamese.search", "the k nearest gallery images of query images"),
    "index": ("siamese.index", "build or update a gallery's search index"),
    "serve": ("siamese.serve", "an HTTP service searching an index"),
    "export": ("siamese.export", "a checkpoint as ONNX or TorchScript, checked against it"),
    "benchmark": ("siamese.benchmark", "a checkpoint's error on the official Omniglot runs"),
    "report": ("siamese.report.__main__", "the table, CSV and plot of a sweep or compare folder"),
    "compare": ("siamese.compare.__main__", "SPRN vs SDRN with equal tuning budgets on val"),
}
# commands run as `python -m MODULE` in this process's place: Lightning starts the DDP ranks of a
# run by re-running the command line, which must then name the module, not this dispatcher
OWN_PROCESS = {"train"}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:{width}s}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(
        [
            "usage: siamese COMMAND [ARGS ...]   (or: python -m siamese COMMAND ...)",
            "",
            "commands:",
            *lines,
            "",
            "`siamese COMMAND --help` shows a command's arguments.",
        ]
    )


def main(argv: list[str] | None = None) -> int | None:
    """Runs the command `argv` (default: the command line) names; returns its exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] in (["-h"], ["--help"]):
        print(usage())
        return 0
    if not args or args[0] not in COMMANDS:
        given = f"unknown command {args[0]!r}" if args else "no command given"
        close = difflib.get_close_matches(args[0], COMMANDS, n=1) if args else []
        hint = f" (did you mean {close[0]}?)" if close else ""
        print(f"error: {given}{hint}\n\n{usage()}", file=sys.stderr)
        return 2
    name, rest = args[0], args[1:]
    module = COMMANDS[name][0]
    if name in OWN_PROCESS:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", module, *rest])
    sys.argv = [f"siamese {name}", *rest]  # what the command's own parser reads
    return importlib.import_module(module).main()
