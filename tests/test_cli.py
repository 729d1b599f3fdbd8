"""`siamese COMMAND ...` (and `python -m siamese COMMAND ...`): every command of the package on
PATH, each what `python -m` of its module runs."""

import importlib
import json
import sys

import pytest

from siamese.cli import COMMANDS, main
from tests.helpers import ROOT, TINY, python

README = (ROOT / "README.md").read_text()


def test_the_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in COMMANDS)


@pytest.mark.parametrize(("args", "said"), [([], "no command given"), (["trian"], "did you mean")])
def test_no_or_an_unknown_command_says_so_with_the_list(capsys, args, said):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert said in err and "commands:" in err and "train" in err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_runs_its_modules_main(name):
    assert callable(importlib.import_module(COMMANDS[name][0]).main)


@pytest.mark.parametrize("name", ["report", "verify", "export"])
def test_a_command_gets_its_own_arguments(name, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # the dispatcher sets the command's argv
    with pytest.raises(SystemExit) as stop:
        main([name, "--help"])
    assert stop.value.code == 0
    assert "usage:" in capsys.readouterr().out
    assert sys.argv == [f"siamese {name}", "--help"]


def test_pip_installs_the_command_and_the_readme_shows_both_forms():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '[project.scripts]\nsiamese = "siamese.cli:main"' in pyproject
    for name, (module, _) in COMMANDS.items():
        assert f"siamese {name}" in README, name
        assert f"python -m {module.removesuffix('.__main__')}" in README, module


@pytest.mark.slow
def test_siamese_train_composes_the_packaged_configs_anywhere_and_runs_ddp(tmp_path):
    # from a folder that is not the project: the configs come from the package; two DDP ranks,
    # which Lightning starts by re-running the command line (so it must name siamese.train)
    run_dir = tmp_path / "run"
    ddp = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
    proc = python("-m", "siamese", "train", *TINY, *ddp, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed", proc.stderr[-2000:]
    assert (run_dir / "train.log").is_file() and "run completed" in proc.stdout
    assert {p.name for p in tmp_path.iterdir()} == {"run"}  # nothing written where it ran
