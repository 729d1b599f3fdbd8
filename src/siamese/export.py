"""Export a trained encoder for use outside Python training code:
`python -m siamese.export ckpt_path=RUN/checkpoints/best.ckpt format=onnx|torchscript [out=DIR]`
(`trust=true` loads a checkpoint that holds more than plain data and tensors: it could run code).
ONNX is the format to share a model in: a graph of operators, no code that runs when loaded.

The exported model takes uint8 images (N, C, H, W), like training does, and returns the embeddings
of `module.embed`: the pixel statistics of the training split are baked in. Beside it goes a JSON
(model.onnx.json) with what a user needs to feed it and read its output. DIR defaults to RUN/export/;
an earlier export is never overwritten: model.onnx, model-1.onnx, ...

ONNX uses torch's dynamo exporter (torch.export + onnxscript): the TorchScript-based exporter is
deprecated in torch 2.9+ and warns that it will be removed. Each export is checked before it is
kept: the exported model must give module.embed's embeddings (to 1e-4) on a batch of another size.
"""

import copy
import importlib.metadata
import linecache
import math
import re
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from siamese.core.atomic import atomic_write_json, new_file
from siamese.inference import DEFAULT_RESIZE, meta_path
from siamese.keyvalue import argv, boolean, parse
from siamese.run.checkpoint import CLASS_NAMES_KEY

USAGE = "python -m siamese.export ckpt_path=FILE format=onnx|torchscript [out=DIR] [trust=false]"
FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
TOLERANCE = 1e-4


class ExportError(RuntimeError):
    pass


class NormalizedEncoder(nn.Module):
    """uint8 (N, C, H, W) → embeddings (N, D): `SiameseModule.embed` for 4-D input, standalone."""

    def __init__(self, encoder: nn.Module, pixel_mean: Tensor, pixel_std: Tensor):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("pixel_mean", pixel_mean.detach().clone().float())
        self.register_buffer("pixel_std", pixel_std.detach().clone().float())

    def forward(self, images: Tensor) -> Tensor:
        x = images.float().div(255)
        x = (x - self.pixel_mean[:, None, None]) / self.pixel_std[:, None, None]
        return self.encoder(x)


def metadata(module, cfg, fmt: str, class_names: list[str] | None = None) -> dict:
    threshold, head = float(module.threshold), module.pair_scorer()
    try:
        version = importlib.metadata.version("siamese")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree without installing
        version = None
    return {
        "format": fmt,
        "input": "uint8 (N, channels, image_size, image_size), RGB or L, 0..255",
        "image_size": int(cfg.data.image_size),
        "channels": int(cfg.data.channels),
        "resize": cfg.data.get("resize", DEFAULT_RESIZE),
        "distance": cfg.embedding.distance,
        "threshold": None if math.isnan(threshold) else threshold,
        # loss=koch: the head's weights, so that verification compares its 1 − p with τ
        "pair_head": head.exported() if head is not None else None,
        "embedding_dim": int(cfg.embedding.dim),
        "l2_normalize": bool(cfg.embedding.l2_normalize),
        "class_names": list(class_names) if class_names is not None else None,
        "backbone": cfg.backbone.get("_target_"),
        "siamese_version": version,
    }


def _example(cfg, batch: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (batch, cfg.data.channels, cfg.data.image_size, cfg.data.image_size)
    return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)


def _operation(err: BaseException) -> str:
    """The failing operation as the exporter's error chain names it: the source line it raised
    at, else an aten operator, else the first line of the innermost error."""
    messages = []
    while err is not None:
        messages.append(re.sub(r"\x1b\[[0-9;]*m", "", str(err)))  # no terminal colours
        err = err.__cause__ or err.__context__
    text = "\n".join(messages)
    call = re.search(r'File "([^"]+)", line (\d+), in (\w+)\n\s+(.+)', text)
    if call:
        return f"`{call[4].strip()}` ({Path(call[1]).name}:{call[2]} in {call[3]})"
    ops = re.findall(r"(?:aten|prim)(?:::|\.)[A-Za-z_][\w.]*", text)
    if ops:
        return ops[0]
    return next((ln.strip() for ln in messages[-1].splitlines() if ln.strip()), "unknown")[:300]


def _fail(cfg, fmt: str, operation: str, detail: str = "") -> ExportError:
    backbone = cfg.backbone.get("_target_", "?")
    return ExportError(
        f"cannot export backbone {backbone} to {fmt}: operation {operation} cannot be traced"
        + (f" ({detail})" if detail else "")
        + ". Choose another backbone, or make its forward free of data-dependent Python control "
        "flow and conversions of tensors to Python numbers"
    )


def _export_onnx(net: nn.Module, example: Tensor, path: Path, cfg) -> None:
    batch = torch.export.Dim("batch", min=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                (example,),
                str(path),
                dynamo=True,
                input_names=["images"],
                output_names=["embeddings"],
                dynamic_shapes=({0: batch},),
                external_data=False,  # one self-contained file
                verbose=False,
            )
    except Exception as err:
        path.unlink(missing_ok=True)
        raise _fail(cfg, "onnx", _operation(err), type(err).__name__) from err


def _export_torchscript(net: nn.Module, example: Tensor, path: Path, cfg) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            traced = torch.jit.trace(net, (example,), check_trace=False)
        except Exception as err:
            raise _fail(cfg, "torchscript", _operation(err), type(err).__name__) from err
    # a TracerWarning means a value was frozen into the trace: its message names the operation
    frozen = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    if frozen:
        w = frozen[0]
        line = linecache.getline(w.filename, w.lineno).strip()
        where = f"`{line}` ({Path(w.filename).name}:{w.lineno})"
        raise _fail(cfg, "torchscript", where, str(w.message))
    traced.save(str(path))


def _check(fmt: str, path: Path, module, cfg) -> None:
    """The exported file, loaded back as a user would, must embed like module.embed."""
    from siamese.inference import load_model

    images = _example(cfg, 3, seed=1)  # another batch size than the traced one
    with torch.inference_mode():
        expected = module.embed(images.to(module.pixel_mean.device)).float().cpu()
    got = load_model(path).embed(images)
    if got.shape != expected.shape or not torch.allclose(got, expected, atol=TOLERANCE, rtol=0):
        diff = (got - expected).abs().max() if got.shape == expected.shape else got.shape
        path.unlink(missing_ok=True)
        meta_path(path).unlink(missing_ok=True)
        raise _fail(cfg, fmt, "(unknown: the traced graph differs)", f"embeddings differ by {diff}")


def export_module(
    module, cfg, fmt: str, out_dir: str | Path, class_names: list[str] | None = None
) -> tuple[Path, Path]:
    """Writes out_dir/model.onnx (or model.pt) and model.onnx.json (model.pt.json) beside it, never over earlier files;
    returns (model path, JSON path). `module` is a SiameseModule, `cfg` its run config."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"out={out_dir} is a file, not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = new_file(out_dir / f"model{FORMATS[fmt]}", meta_path)
    # a CPU copy in eval mode: the caller's module (on a GPU, in training) is left as it was
    net = NormalizedEncoder(
        copy.deepcopy(module.encoder).cpu(), module.pixel_mean.cpu(), module.pixel_std.cpu()
    ).eval()
    example = _example(cfg, 2, seed=0)
    if fmt == "onnx":
        _export_onnx(net, example, path, cfg)
    else:
        _export_torchscript(net, example, path, cfg)
    meta = meta_path(path)
    atomic_write_json(meta, metadata(module, cfg, fmt, class_names))
    was_training = module.training
    try:
        _check(fmt, path, module.eval(), cfg)
    finally:
        module.train(was_training)
    return path, meta


def default_out_dir(ckpt_path: str | Path) -> Path:
    """RUN/export for RUN/checkpoints/X.ckpt; else export/ beside the checkpoint."""
    ckpt = Path(ckpt_path).resolve()
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return run / "export"


def export_checkpoint(
    ckpt_path: str | Path, fmt: str, out_dir: str | Path | None = None, trust: bool = False
) -> tuple[Path, Path]:
    from siamese.run.checkpoint import read_checkpoint
    from siamese.run.restore import rebuild

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if Path(ckpt_path).is_dir():
        raise IsADirectoryError(f"ckpt_path={ckpt_path} is a directory, not a checkpoint file")
    ckpt = read_checkpoint(ckpt_path, trust)  # once: the model and the class names come from it
    module, cfg = rebuild(ckpt)
    class_names = ckpt.get(CLASS_NAMES_KEY)
    return export_module(module, cfg, fmt, out_dir or default_out_dir(ckpt_path), class_names)


def main() -> None:
    keys = {"ckpt_path": None, "format": None, "out": "", "trust": "false"}
    args, _ = parse(argv(), USAGE, keys)
    if args["format"] not in FORMATS:
        raise SystemExit(
            f"error: format must be one of {', '.join(FORMATS)}, got {args['format']!r}"
        )
    trust = boolean(args, "trust", USAGE)
    try:
        path, meta = export_checkpoint(
            args["ckpt_path"], args["format"], args["out"] or None, trust
        )
    except (ExportError, OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    print(f"{path}\n{meta}")


if __name__ == "__main__":
    main()
