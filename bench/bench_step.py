"""The training step through Lightning's fit against a hand-written PyTorch loop, on the device
of the config's trainer (trainer=gpu: the GPU, with its precision).

    python bench/bench_step.py [--steps 60] [--warmup 10] [--repeat 3] [--json] [overrides ...]

Module, data module and batches come from the real config (Hydra's compose API, then the
project's build(cfg)), built afresh with the same seed for every run, so each run trains the
same weights on the same batches and the losses must agree (checked to 5 decimals, printed).
What is not the step is off for all: no validation, no checkpoints, no logger, no progress bar,
no model summary. Variants:
- loop: next(batch) → loss(embed(images)) → zero_grad → backward → step, nothing else;
- lightning: Trainer.fit with the module as the real run has it (its self.log calls included);
- barebones: Trainer(barebones=True), which also turns off Lightning's logging machinery (so
  self.log raises: the module's training_step is replaced by one that does not log).
Per-step time is taken from the end of step `warmup` to the end of the last step (setup,
first-step allocations and the lazy imports of the first step are left out). The variants
alternate --repeat times in rotating order; the fastest of each is kept (the machine may be
shared: --threads 1 makes a run less sensitive to other processes).
`loader_share`: the loop's time in next(batch) over its time per step.
"""

import argparse
import copy
import json
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir

from siamese.config.schemas import register
from siamese.data.batches import DataOnDevice
from siamese.run.build import build

ROOT = Path(__file__).resolve().parents[1]


def make(overrides: list[str], steps: int):
    register()
    with initialize_config_dir(
        config_dir=str(ROOT / "src" / "siamese" / "conf"), version_base="1.3"
    ):
        cfg = compose("train", overrides=[*overrides, f"data.steps_per_epoch={steps}"])
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule, module = build(cfg)
    return cfg, datamodule, module


def optimizer_of(module) -> torch.optim.Optimizer:
    conf = module.configure_optimizers()
    # an epoch-interval scheduler steps after the last step: it never changes these losses
    return conf["optimizer"] if isinstance(conf, dict) else conf


def step_loss(module, batch) -> torch.Tensor:
    """What the module's training_step computes, without its self.log calls."""
    images = batch["images"]
    if getattr(module, "augment", None) is not None:
        images = module.augment(images, module.augment_generator(images))
    return module.loss(module.embed(images), batch["labels"]).loss


def device_of(trainer_cfg) -> torch.device:
    return torch.device("cuda" if trainer_cfg.accelerator == "gpu" else "cpu")


def sync(device: torch.device) -> None:
    if device.type == "cuda":  # time what the GPU did, not what was queued
        torch.cuda.synchronize(device)


def run_loop(module, datamodule, warmup: int, trainer_cfg) -> dict:
    device = device_of(trainer_cfg)
    module.to(device)
    datamodule.place(device)  # as the real run: splits and sampling on the device
    bf16 = str(trainer_cfg.precision).startswith("bf16")
    opt = optimizer_of(module)
    module.train()
    losses, fetch_s, it = [], 0.0, iter(datamodule.train_dataloader())
    t_mark = None
    for step in range(datamodule.steps_per_epoch):
        sync(device)
        t0 = time.perf_counter()
        batch = {k: v.to(device) for k, v in next(it).items()}
        sync(device)
        t1 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = step_loss(module, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        if step >= warmup:
            fetch_s += t1 - t0
        if step == warmup - 1:
            sync(device)
            t_mark = time.perf_counter()
    sync(device)
    per_step = (time.perf_counter() - t_mark) / (datamodule.steps_per_epoch - warmup)
    n = datamodule.steps_per_epoch - warmup
    return {"step_s": per_step, "loader_s": fetch_s / n, "losses": torch.stack(losses).tolist()}


class StepClock(pl.Callback):
    """Losses and the time from the end of step `warmup` to the end of the last step."""

    def __init__(self, warmup: int):
        self.warmup, self.losses, self.t_mark, self.t_end = warmup, [], None, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(outputs["loss"].detach())
        if batch_idx == self.warmup - 1:
            sync(pl_module.device)
            self.t_mark = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        sync(pl_module.device)
        self.t_end = time.perf_counter()


def no_log(module):
    """The same module whose training_step does not call self.log (barebones forbids it)."""

    class NoLog(type(module)):
        def training_step(self, batch, batch_idx):
            return step_loss(self, batch)

    module.__class__ = NoLog
    return module


def run_lightning(
    module, datamodule, warmup: int, trainer_cfg, barebones: bool, log_every: int = 50
) -> dict:
    clock = StepClock(warmup)
    lean = dict(
        accelerator=trainer_cfg.accelerator,
        precision=trainer_cfg.precision,
        devices=1,
        max_epochs=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=log_every,  # the run's: the logger connector's work follows it
    )
    if barebones:
        module = no_log(module)
        keep = ("accelerator", "precision", "devices", "max_epochs")
        lean = {k: v for k, v in lean.items() if k in keep}
        lean |= dict(barebones=True, limit_val_batches=0)
    trainer = pl.Trainer(callbacks=[DataOnDevice(), clock], use_distributed_sampler=False, **lean)
    trainer.fit(module, datamodule)
    per_step = (clock.t_end - clock.t_mark) / (datamodule.steps_per_epoch - warmup)
    return {"step_s": per_step, "losses": torch.stack(clock.losses).tolist()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. data.batch_size=128")
    args = p.parse_args()
    import logging
    import warnings

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    for noise in ("does not have many workers", "LeafSpec", "has `__len__` defined"):
        warnings.filterwarnings("ignore", f".*{noise}.*")

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, dm0, mod0 = make(args.overrides, args.warmup + args.steps)
    log_every = cfg.trainer.get("log_every_n_steps", 50)
    variants = {
        "loop": lambda m, d: run_loop(m, d, args.warmup, cfg.trainer),
        "lightning": lambda m, d: run_lightning(m, d, args.warmup, cfg.trainer, False, log_every),
        "barebones": lambda m, d: run_lightning(m, d, args.warmup, cfg.trainer, True),
    }
    results = {name: [] for name in variants}
    for i in range(args.repeat):
        # rotate the order, so that no variant always runs first or last in a round
        names = list(variants)[i % len(variants) :] + list(variants)[: i % len(variants)]
        for name, fn in ((n, variants[n]) for n in names):
            # identical starting weights, sampler state and data for every run
            results[name].append(fn(copy.deepcopy(mod0), copy.deepcopy(dm0)))
    best = {name: min(runs, key=lambda r: r["step_s"]) for name, runs in results.items()}
    ref = torch.tensor(best["loop"]["losses"])
    diff = {name: float((torch.tensor(r["losses"]) - ref).abs().max()) for name, r in best.items()}
    loop_s = best["loop"]["step_s"]
    out = {
        "lightning_over_loop": best["lightning"]["step_s"] / loop_s,
        "barebones_over_loop": best["barebones"]["step_s"] / loop_s,
        "loader_share": best["loop"]["loader_s"] / loop_s,
        "steps_per_s": {name: 1 / r["step_s"] for name, r in best.items()},
        "max_loss_diff_vs_loop": diff,
        "same_losses_5_decimals": all(d < 5e-6 for d in diff.values()),
        "steps": args.steps,
        "warmup": args.warmup,
        "repeat": args.repeat,
        "batch": f"{cfg.data.batch_size} tuples of {dm0.tuple_size}, {cfg.data.image_size} px",
        "torch_threads": torch.get_num_threads(),
        "overrides": args.overrides,
    }
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['batch']}, backbone {cfg.backbone._target_}, loss {cfg.loss._target_}")
    print(
        f"{args.steps} timed steps after {args.warmup}, best of {args.repeat}, threads {out['torch_threads']}"
    )
    for name, r in best.items():
        print(
            f"  {name:<10} {1 / r['step_s']:7.2f} steps/s  {1000 * r['step_s']:7.2f} ms/step  "
            f"x{r['step_s'] / loop_s:.3f} of loop  max |loss diff| {diff[name]:.1e}"
        )
    print(f"  first losses: {[round(x, 5) for x in best['loop']['losses'][:3]]}")
    print(f"  loader share of a loop step: {out['loader_share']:.3f}")
    print(f"  same losses to 5 decimals: {out['same_losses_5_decimals']}")


if __name__ == "__main__":
    main()
