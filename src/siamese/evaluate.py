"""Re-evaluate a checkpoint: `python -m siamese.evaluate ckpt_path=RUN/checkpoints/best.ckpt
[data.source.seed=7 ...]`. τ from the checkpoint is applied unchanged to the test split; the
metrics go to a new metrics*.json beside the checkpoint."""

import json
from pathlib import Path

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from siamese.build import build_scorer
from siamese.checkpoint import load_checkpoint
from siamese.checks import build_node
from siamese.config import DataModuleConf
from siamese.keyvalue import argv, parse
from siamese.scoring import score_split

USAGE = "python -m siamese.evaluate ckpt_path=FILE [data.KEY=VALUE ...]"


def evaluate(ckpt_path: str, overrides: dict[str, str]) -> tuple[dict[str, float], Path]:
    module, cfg = load_checkpoint(ckpt_path)
    not_data = [k for k in overrides if not k.startswith("data.")]
    if not_data:
        raise SystemExit(f"error: only data.* keys can change for evaluation, got {not_data}")
    OmegaConf.set_struct(cfg, True)  # a misspelt key fails, naming it
    changes = OmegaConf.from_dotlist([f"{k}={v}" for k, v in overrides.items()])
    try:  # typed like a run's config: data.eval_batch_size=abc fails, naming the key
        cfg = OmegaConf.merge(cfg, changes)
        OmegaConf.merge(OmegaConf.structured(DataModuleConf), cfg.data)
    except OmegaConfBaseException as err:
        raise SystemExit(f"error: {err}") from None
    datamodule = build_node(cfg.data, "data")  # no sampler: evaluation only uses the fixed pairs
    datamodule.setup("test")
    scorer = build_scorer(cfg)
    tau = float(module.threshold)
    metrics = {}
    for stage, threshold in (("val", None), ("test", tau)):
        split, pairs = datamodule.splits[stage], datamodule.pairs[stage]
        size = datamodule.eval_batch_size
        fmr = module.chosen_fmr_thresholds() if threshold is not None else None
        scores, _ = score_split(module, split, pairs, scorer, threshold, size, fmr)
        metrics |= {f"{stage}/{k}": v for k, v in scores.items()}
    out = _new_file(Path(ckpt_path).parent / "metrics.json")
    out.write_text(
        json.dumps(
            {
                "status": "completed",
                "checkpoint": str(ckpt_path),
                "threshold": tau,
                "data": OmegaConf.to_container(cfg.data),
                "metrics": metrics,
            },
            indent=2,
        )
        + "\n"
    )
    return metrics, out


def _new_file(path: Path) -> Path:
    """`path`, or path-1, path-2, ... : an earlier evaluation is never overwritten."""
    n, candidate = 0, path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def main() -> None:
    args, _ = parse(argv(), USAGE, {"ckpt_path": None}, free_keys=True)
    ckpt = args.pop("ckpt_path")
    with torch.inference_mode():
        metrics, out = evaluate(ckpt, args)
    for key, value in metrics.items():
        print(f"{key:28s} {value:.4f}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
