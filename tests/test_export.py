"""Exported models (ONNX, TorchScript) embed like the checkpoint they come from, load without
Lightning or Hydra, and give verify and search the same answers."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image
from torch import Tensor, nn

from siamese.config.schemas import register
from siamese.data.sources.synthetic import SyntheticGlyphs
from siamese.export import ExportError, export_checkpoint, export_module
from siamese.inference import load_model, meta_path
from siamese.run.build import build_module
from siamese.run.checkpoint import CONFIG_KEY
from siamese.search import search
from siamese.verify import verify
from tests.helpers import CONF, ROOT, TINY, options

SIZE = 16
# two_branch and resnet18 take longer to export: every backbone still runs with -m slow
FAST = {"mlp"}
BACKBONES = [
    b if b in FAST else pytest.param(b, marks=pytest.mark.slow) for b in options("backbone")
]


def save_run(make_config, tmp_path: Path, *overrides: str) -> Path:
    """A run folder with checkpoints/best.ckpt saved as training saves it (state + config)."""
    cfg = make_config(*overrides, f"data.image_size={SIZE}")
    torch.manual_seed(0)
    module = build_module(cfg, torch.tensor([0.3, 0.4, 0.5]), torch.tensor([0.2, 0.25, 0.3]))
    # BatchNorm statistics away from (0, 1), so that an export dropping them would show
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    images = glyphs(4)
    f = module.eval().embed(images[:2])
    module.threshold.fill_(
        float((f[0] - f[1]).norm().detach()) / 2
    )  # (a, a) same, (a, b) different
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    state = {
        "state_dict": module.state_dict(),
        CONFIG_KEY: OmegaConf.to_container(cfg, resolve=True),
    }
    torch.save(state, ckpt)
    return ckpt


@pytest.fixture(scope="module")
def mlp_ckpt(tmp_path_factory) -> Path:
    """One saved mlp run, shared by the tests that only read it."""
    register()

    def make(*overrides: str):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("train", overrides=[*TINY, *overrides])

    return save_run(make, tmp_path_factory.mktemp("shared"), "backbone=mlp")


def glyphs(n: int) -> Tensor:
    return SyntheticGlyphs(num_classes=n, samples_per_class=1, seed=3)(image_size=SIZE).images


def write_pngs(folder: Path, images: Tensor) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        paths.append(folder / f"{i:02d}.png")
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(paths[-1])
    return paths


@pytest.mark.parametrize("backbone", BACKBONES)
def test_exports_embed_like_the_checkpoint(make_config, tmp_path, backbone):
    ckpt = save_run(make_config, tmp_path, f"backbone={backbone}")
    reference = load_model(ckpt)
    images = glyphs(5)
    expected = reference.module.embed(images)
    run = ckpt.parent.parent
    paths = []
    for fmt, name in (("onnx", "model.onnx"), ("torchscript", "model.pt")):
        path, meta = export_checkpoint(ckpt, fmt)
        assert path == run / "export" / name and meta == meta_path(path)
        model = load_model(path)
        got = model.embed(images)
        assert got.dtype == torch.float32 and got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
        assert model.embed(images[:1]).shape == (1, expected.shape[1])  # dynamic batch
        info = json.loads(meta.read_text())
        assert info["image_size"] == SIZE and info["channels"] == 3
        assert info["distance"] == "euclidean" and info["embedding_dim"] == expected.shape[1]
        assert info["threshold"] == pytest.approx(reference.threshold)
        assert info["backbone"].endswith(reference.module.encoder.backbone.__class__.__name__)
        assert info["siamese_version"] and info["format"] == fmt
        assert model.threshold == pytest.approx(reference.threshold)
        paths.append(path)

    a, b = write_pngs(tmp_path / "img", glyphs(2))
    for pair, verdict in (((a, a), "same"), ((a, b), "different")):
        d_ckpt, tau = verify(reference, *pair)
        assert ("same" if d_ckpt < tau else "different") == verdict
        for path in paths:
            d, t = verify(path, *pair)
            assert d == pytest.approx(d_ckpt, abs=1e-4) and t == pytest.approx(tau)


def test_an_export_never_overwrites_an_earlier_one(make_config, tmp_path):
    ckpt = save_run(make_config, tmp_path, "backbone=mlp")
    first, _ = export_checkpoint(ckpt, "torchscript", tmp_path / "out")
    before = first.read_bytes()
    second, meta = export_checkpoint(ckpt, "torchscript", tmp_path / "out")
    assert (first.name, second.name, meta.name) == ("model.pt", "model-1.pt", "model-1.pt.json")
    assert first.read_bytes() == before


class DataDependent(nn.Module):
    """A backbone whose forward branches on a tensor's value: no static graph exists."""

    out_features = 4

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 4)

    def forward(self, x: Tensor) -> Tensor:
        z = self.linear(x.mean((2, 3)))
        return z if float(z.sum()) > 0 else -z


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_untraceable_backbone_fails_naming_backbone_and_operation(make_config, tmp_path, fmt):
    cfg = make_config(f"data.image_size={SIZE}")
    module = build_module(cfg, torch.zeros(3), torch.ones(3))
    module.encoder.backbone = DataDependent()
    module.encoder.head = nn.Linear(4, cfg.embedding.dim)
    cfg.backbone._target_ = "tests.test_export.DataDependent"
    with pytest.raises(ExportError) as err:
        export_module(module, cfg, fmt, tmp_path)
    message = str(err.value)
    assert "backbone tests.test_export.DataDependent" in message and "operation" in message
    # the operation: the aten op of the tensor → number conversion, or the traced source line
    assert "float(z.sum())" in message or "test_export.py:" in message, message
    assert not list(tmp_path.glob("model*"))  # nothing half-written is left


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def test_exported_models_load_without_lightning_or_hydra(mlp_ckpt, tmp_path):
    ckpt = mlp_ckpt
    onnx, _ = export_checkpoint(ckpt, "onnx")
    script, _ = export_checkpoint(ckpt, "torchscript")
    a, b = write_pngs(tmp_path / "img", glyphs(2))
    code = f"""
import sys
from siamese.inference import load_model
from siamese.verify import verify
for path in ({str(onnx)!r}, {str(script)!r}):
    print(verify(load_model(path), {str(a)!r}, {str(b)!r}))
heavy = [m for m in sys.modules if m.split(".")[0] in ("pytorch_lightning", "lightning", "hydra", "omegaconf")]
print("heavy", heavy)
"""
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1] == "heavy []"


def cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.slow  # two interpreters, one of them importing Lightning: ~15 s
def test_verify_and_search_print_the_same_with_an_export(make_config, tmp_path):
    ckpt = save_run(make_config, tmp_path, "backbone=convnet")
    onnx, _ = export_checkpoint(ckpt, "onnx")
    a, b = write_pngs(tmp_path / "img", glyphs(2))
    outputs = []
    for key, path in (("ckpt_path", ckpt), ("model", onnx)):
        proc = cli(["-m", "siamese.verify", f"{key}={path}", str(a), str(b)], tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs.append(proc.stdout)
    assert re.match(r"distance \S+  threshold \S+  different", outputs[0])
    assert outputs[0] == outputs[1]
    gallery = tmp_path / "gallery"
    write_pngs(gallery, glyphs(6))
    query = gallery / "00.png"
    ranked = [[p for p, _ in search(m, gallery, query, k=3)] for m in (ckpt, onnx)]
    assert ranked[0] == ranked[1] and ranked[0][0].name == "00.png"


def test_search_skips_a_corrupt_gallery_image_and_names_it(mlp_ckpt, tmp_path, caplog):
    ckpt = mlp_ckpt
    gallery = tmp_path / "gallery"
    write_pngs(gallery, glyphs(4))
    (gallery / "01.png").write_bytes(b"not an image")
    found = search(ckpt, gallery, gallery / "00.png", k=10, batch_size=2)
    assert [p.name for p, _ in found][0] == "00.png" and len(found) == 3
    assert "01.png" not in {p.name for p, _ in found}
    assert "skipped 1 unreadable image" in caplog.text and "01.png" in caplog.text
    assert "skipped 1 of 4 gallery images" in caplog.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["k=0"], "k must be >= 1, got 0"),
        (["k=-1"], "k must be >= 1, got -1"),
        (["k=two"], "k must be an integer, got 'two'"),
        (["batch_size=0"], "batch_size must be >= 1, got 0"),
        (["ckpt_path=DIR"], "ckpt_path=DIR is a directory, not a file"),
        (["ckpt_path=", "model=DIR"], "model=DIR is a directory, not a file"),
        (["query=DIR/none.png"], "image DIR/none.png does not exist"),
        (["gallery=DIR/f.png"], "gallery DIR/f.png is a file, not a folder"),
        (["ckpt_path=", "model="], "give exactly one of ckpt_path"),
        (["ckpt_path=", "model=DIR/f.png"], "unknown file type '.png'"),
    ],
)
def test_search_command_errors_name_the_key(mlp_ckpt, tmp_path, monkeypatch, args, message):
    from siamese.search import main

    ckpt = mlp_ckpt
    (tmp_path / "DIR").mkdir()
    write_pngs(tmp_path / "DIR", glyphs(2)[:1])[0].rename(tmp_path / "DIR" / "f.png")
    gallery = tmp_path / "gallery"
    write_pngs(gallery, glyphs(2))
    given = {"ckpt_path": str(ckpt), "gallery": str(gallery), "query": str(gallery / "00.png")}
    given |= dict(a.split("=", 1) for a in args)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["search", *(f"{k}={v}" for k, v in given.items())])
    with pytest.raises(SystemExit) as err:
        main()
    assert message in str(err.value)


def test_export_command_writes_into_the_run_folder(make_config, tmp_path, monkeypatch, capsys):
    from siamese.export import main

    ckpt = save_run(make_config, tmp_path, "backbone=mlp")
    monkeypatch.setattr(sys, "argv", ["export", f"ckpt_path={ckpt}", "format=torchscript"])
    main()
    printed = capsys.readouterr().out.split()
    run = ckpt.parent.parent
    assert printed == [str(run / "export" / "model.pt"), str(run / "export" / "model.pt.json")]
    for argv, message in (
        ([f"ckpt_path={ckpt}", "format=tflite"], "format must be one of onnx, torchscript"),
        ([f"ckpt_path={run}", "format=onnx"], "is a directory, not a checkpoint file"),
        ([f"ckpt_path={run}/nope.ckpt", "format=onnx"], "nope.ckpt does not exist"),
    ):
        monkeypatch.setattr(sys, "argv", ["export", *argv])
        with pytest.raises(SystemExit, match=message):
            main()


def test_export_leaves_the_callers_module_as_it_was(make_config, tmp_path):
    cfg = make_config("backbone=mlp", f"data.image_size={SIZE}")
    module = build_module(cfg, torch.zeros(3), torch.ones(3)).train()
    module.threshold.fill_(0.5)  # not NaN: NaN never equals itself
    module.fmr_thresholds.fill_(0.25)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    export_module(module, cfg, "torchscript", tmp_path)
    assert module.training and module.encoder.backbone.training
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
