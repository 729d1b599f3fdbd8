"""Are two images of the same class? `python -m siamese.verify ckpt_path=FILE a.png b.png`
prints their distance, the threshold τ chosen on val, and the verdict (same when d < τ)."""

import torch

from siamese.checkpoint import load_checkpoint
from siamese.data.images import load_image
from siamese.keyvalue import argv, parse

USAGE = "python -m siamese.verify ckpt_path=FILE IMAGE_A IMAGE_B"


@torch.inference_mode()
def verify(ckpt_path: str, a: str, b: str) -> tuple[float, float]:
    module, cfg = load_checkpoint(ckpt_path)
    images = torch.stack([load_image(p, cfg.data.channels, cfg.data.image_size) for p in (a, b)])
    fa, fb = module.embed(images)
    return float(module.distance(fa, fb)), float(module.threshold)


def main() -> None:
    args, (a, b) = parse(argv(), USAGE, {"ckpt_path": None}, positional=2)
    d, tau = verify(args["ckpt_path"], a, b)
    print(f"distance {d:.4f}  threshold {tau:.4f}  {'same' if d < tau else 'different'}")


if __name__ == "__main__":
    main()
