"""Are two images of the same class? `python -m siamese.verify ckpt_path=FILE a.png b.png` (or
`model=RUN/export/model.onnx`, a .pt or a .ckpt) prints their distance, the threshold τ chosen on
val, and the verdict (same when d < τ). An exported model needs neither Lightning nor Hydra.
`trust=true` loads a checkpoint that holds more than plain data and tensors (it could run code)."""

from pathlib import Path

from siamese.inference import Model, load_images, load_model
from siamese.keyvalue import UsageError, argv, boolean, parse

USAGE = "python -m siamese.verify ckpt_path=FILE|model=FILE [trust=false] IMAGE_A IMAGE_B"


def verify(model: str | Path | Model, a: str | Path, b: str | Path) -> tuple[float, float]:
    """(distance, τ) of two image files; `model` is a .ckpt, .onnx, .pt path or a loaded Model."""
    model = model if isinstance(model, Model) else load_model(model)
    fa, fb = model.embed(load_images(model, [a, b]))
    return float(model.distance_between(fa, fb)), model.threshold


def model_argument(args: dict[str, str], usage: str) -> Model:
    """The one model given, as ckpt_path= (read as a checkpoint) or model= (by its suffix), a
    checkpoint trusted with trust=true only."""
    given = [k for k in ("ckpt_path", "model") if args.get(k)]
    if len(given) != 1:
        raise UsageError(
            "give exactly one of ckpt_path=FILE.ckpt or model=FILE (.ckpt, .onnx, .pt), got "
            + (" and ".join(given) or "neither"),
            usage,
        )
    key, path = given[0], args[given[0]]
    trust = boolean(args, "trust", usage)
    if Path(path).is_dir():
        raise SystemExit(f"error: {key}={path} is a directory, not a file")
    try:
        return load_model(path, checkpoint=key == "ckpt_path", trust=trust)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None


def main() -> None:
    keys = {"ckpt_path": "", "model": "", "trust": "false"}
    args, (a, b) = parse(argv(), USAGE, keys, positional=2)
    model = model_argument(args, USAGE)
    try:
        d, tau = verify(model, a, b)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    print(f"distance {d:.4f}  threshold {tau:.4f}  {'same' if d < tau else 'different'}")


if __name__ == "__main__":
    main()
