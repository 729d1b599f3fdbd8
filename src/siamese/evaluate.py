"""Re-evaluate a checkpoint: `python -m siamese.evaluate ckpt_path=RUN/checkpoints/best.ckpt
[data.source.seed=7 ...]`. τ from the checkpoint is applied unchanged to the test split; the
metrics go to a new metrics*.json beside the checkpoint. `trust=true` loads a checkpoint that
holds more than plain data and tensors (it could run code)."""

from dataclasses import fields
from pathlib import Path

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from siamese.config.options import DataModuleConf
from siamese.core.atomic import atomic_write_json, new_file
from siamese.keyvalue import argv, boolean, parse
from siamese.metrics.scoring import score_split
from siamese.run.build import build_datamodule, build_scorer
from siamese.run.record import COMPLETED
from siamese.run.restore import load_checkpoint

USAGE = "python -m siamese.evaluate ckpt_path=FILE [trust=false] [data.KEY=VALUE ...]"


def evaluate(
    ckpt_path: str, overrides: dict[str, str], trust: bool = False
) -> tuple[dict[str, float], Path]:
    try:
        module, cfg = load_checkpoint(ckpt_path, trust)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    not_data = [k for k in overrides if not k.startswith("data.")]
    if not_data:
        raise SystemExit(f"error: only data.* keys can change for evaluation, got {not_data}")
    OmegaConf.set_struct(cfg, True)  # a misspelt key fails, naming it
    changes = OmegaConf.from_dotlist([f"{k}={v}" for k, v in overrides.items()])
    try:  # typed like a run's config: data.eval_batch_size=abc fails, naming the key
        cfg = OmegaConf.merge(cfg, changes)
        typed = {f.name for f in fields(DataModuleConf)}  # every data option has these keys
        OmegaConf.merge(OmegaConf.structured(DataModuleConf), {k: cfg.data[k] for k in typed})
    except OmegaConfBaseException as err:
        raise SystemExit(f"error: {err}") from None
    datamodule = build_datamodule(cfg.data)  # no sampler: evaluation uses the fixed pairs only
    scorer = build_scorer(cfg)
    tau = float(module.threshold)
    metrics = {}
    for stage, threshold in (("val", None), ("test", tau)):
        split, pairs = datamodule.splits[stage], datamodule.pairs[stage]
        size = datamodule.eval_batch_size
        fmr = module.chosen_fmr_thresholds() if threshold is not None else None
        scores, _ = score_split(module, split, pairs, scorer, threshold, size, fmr)
        metrics |= {f"{stage}/{k}": v for k, v in scores.items()}
    out = new_file(Path(ckpt_path).parent / "metrics.json")
    record = {
        "status": COMPLETED,
        "checkpoint": str(ckpt_path),
        "threshold": tau,
        "data": OmegaConf.to_container(cfg.data),
        "metrics": metrics,
    }
    atomic_write_json(out, record)
    return metrics, out


def main() -> None:
    args, _ = parse(argv(), USAGE, {"ckpt_path": None, "trust": "false"}, free_keys=True)
    trust = boolean(args, "trust", USAGE)
    overrides = {k: v for k, v in args.items() if k not in ("ckpt_path", "trust")}
    with torch.inference_mode():
        metrics, out = evaluate(args["ckpt_path"], overrides, trust)
    for key, value in metrics.items():
        print(f"{key:28s} {value:.4f}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
