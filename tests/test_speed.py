"""The speed options change how fast a run trains, not what: channels-last, torch.compile and
fused optimizers give the plain run's numbers and checkpoints; bad values fail at start."""

import json
import subprocess
import sys

import pytest
import torch

from siamese.config.checks import ConfigValueError, check_config
from siamese.run.build import build
from siamese.run.resume import _allowed_on_resume
from tests.helpers import ROOT, TINY


def test_a_bad_compile_mode_or_an_unknown_speed_key_is_refused_naming_it(make_config):
    with pytest.raises(ConfigValueError, match=r"speed.compile_mode must be one of .*'fast'"):
        check_config(make_config("speed.compile_mode=fast"))
    with pytest.raises(ConfigValueError, match=r"speed.cuda_graphs is not a setting"):
        check_config(make_config("+speed.cuda_graphs=true"))


def test_channels_last_embeds_as_the_plain_encoder(make_config):
    torch.manual_seed(0)
    _, plain = build(make_config())
    torch.manual_seed(0)
    _, fast = build(make_config("speed.channels_last=true"))
    conv = next(m for m in fast.encoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    images = torch.randint(0, 256, (4, 3, 3, 16, 16), dtype=torch.uint8)
    plain.eval(), fast.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast.embed(images), plain.embed(images), rtol=1e-5, atol=1e-5)
    assert list(fast.state_dict()) == list(plain.state_dict())


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "adagrad"])
def test_optimizer_fused_reaches_torch(make_config, name):
    _, module = build(make_config(f"optimizer={name}", "optimizer.fused=true"))
    conf = module.configure_optimizers()
    optimizer = conf["optimizer"] if isinstance(conf, dict) else conf
    assert optimizer.defaults["fused"] is True
    _, module = build(make_config(f"optimizer={name}"))
    conf = module.configure_optimizers()
    optimizer = conf["optimizer"] if isinstance(conf, dict) else conf
    assert optimizer.defaults["fused"] is None  # torch's own choice


def test_speed_options_may_change_on_resume_unlike_the_model():
    assert _allowed_on_resume("speed.compile=true")
    assert _allowed_on_resume("speed.channels_last=false")
    assert not _allowed_on_resume("optimizer.fused=true")  # the optimizer's state is the run's
    assert not _allowed_on_resume("embedding.dim=32")


def _train(tmp_path, *overrides):
    cmd = [sys.executable, "train.py", *TINY, "logger=none", f"hydra.run.dir={tmp_path}"]
    done = subprocess.run([*cmd, *overrides], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    return json.loads((tmp_path / "metrics.json").read_text())["metrics"], state


@pytest.mark.slow
def test_compiled_channels_last_fused_run_matches_the_plain_run(tmp_path):
    plain, plain_state = _train(tmp_path / "plain")
    fast, fast_state = _train(
        tmp_path / "fast", "speed.compile=true", "speed.channels_last=true", "optimizer.fused=true"
    )
    assert list(fast_state) == list(plain_state)  # compiled in place: the weights keep their names
    for key, value in plain_state.items():
        torch.testing.assert_close(fast_state[key].float(), value.float(), rtol=0, atol=2e-2)
    assert fast.keys() == plain.keys()
    for key in ("test/p_at_1", "test/auc", "test/map_at_r"):
        assert fast[key] == pytest.approx(plain[key], abs=0.05), key
