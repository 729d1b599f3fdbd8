"""Cost of DivergenceGuard per training step, two ways, in one process:
- the check alone (the guard's fused norms and the host read) against one plain training step
  (forward, backward, Adam) of a small CNN, interleaved, medians of --reps each;
- a whole fit with and without the guard, alternated, median of --repeats each (on a shared
  machine this figure is noisy: the check alone is the reliable one).

    python bench/bench_guard.py [--steps 100] [--repeats 3] [--reps 50] [--accelerator cpu|gpu]
"""

import argparse
import statistics
import time

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from siamese.run.guards import DivergenceGuard


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3, padding=1, stride=2),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.Linear(64 * 16 * 16, 64),
        )

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return self.net(x).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-4)


def fit_s(steps: int, guard: bool, accelerator: str) -> float:
    data = TensorDataset(torch.randn(32 * steps, 1, 32, 32))
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator=accelerator,
        devices=1,
        callbacks=[DivergenceGuard(max_loss=1e6, max_weight_norm=1e6)] if guard else [],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    torch.manual_seed(0)
    module = Net()
    start = time.perf_counter()
    trainer.fit(module, DataLoader(data, batch_size=32))
    return time.perf_counter() - start


def check_vs_step(reps: int, device: str) -> tuple[float, float]:
    """Median seconds of one plain training step and of the guard's check after it."""
    torch.manual_seed(0)
    module = Net().to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    x = torch.randn(32, 1, 32, 32, device=device)
    guard = DivergenceGuard(max_loss=1e6, max_weight_norm=1e6, blocking=True)
    trainer = type("T", (), {"global_step": 0, "precision_plugin": None})()
    step_s, check_s = [], []
    for _ in range(reps + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = module.net(x).pow(2).mean()
        loss.backward()
        optimizer.step()
        if device != "cpu":
            torch.cuda.synchronize()
        middle = time.perf_counter()
        guard.on_before_backward(trainer, module, loss)
        guard.on_before_optimizer_step(trainer, module, optimizer)
        end = time.perf_counter()
        step_s.append(middle - start)
        check_s.append(end - middle)
    return statistics.median(step_s[1:]), statistics.median(check_s[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--accelerator", default="cpu")
    args = parser.parse_args()
    device = "cuda" if args.accelerator == "gpu" else "cpu"
    step, check = check_vs_step(args.reps, device)
    print(
        f"{device}: one training step {step * 1e3:.2f} ms, the guard's check "
        f"{check * 1e3:.3f} ms, ratio {check / step:.4f}"
    )
    if args.steps == 0:
        return
    fit_s(10, True, args.accelerator)  # warm-up: imports, allocator, kernels
    times = {False: [], True: []}
    for _ in range(args.repeats):
        for guard in (False, True):
            times[guard].append(fit_s(args.steps, guard, args.accelerator))
    plain, guarded = (statistics.median(times[g]) for g in (False, True))
    print(
        f"{args.steps} steps, {args.accelerator}: without guard {plain:.3f} s, "
        f"with guard {guarded:.3f} s, ratio {guarded / plain:.3f}"
    )


if __name__ == "__main__":
    main()
