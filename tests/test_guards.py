"""DivergenceGuard on a tiny Lightning model: an injected non-finite loss at step k and an
exploding learning rate stop the run naming the step; no non-finite weights are saved."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from siamese.core.atomic import AtomicCheckpointIO
from siamese.core.errors import ArgumentError, positive
from siamese.run.guards import DivergenceError, DivergenceGuard


class Tiny(pl.LightningModule):
    """A linear regression; nan_at_step (test-only) makes the loss at that step non-finite."""

    def __init__(self, lr: float = 0.01, nan_at_step: int | None = None, optimizer: str = "sgd"):
        super().__init__()
        self.layer = torch.nn.Linear(8, 1)
        self.lr, self.nan_at_step, self.optimizer_name = lr, nan_at_step, optimizer

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        if self.global_step == self.nan_at_step:
            loss = loss * float("nan")
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        opt = torch.optim.Adam if self.optimizer_name == "adam" else torch.optim.SGD
        return opt(self.parameters(), lr=self.lr)


def loader(n: int = 64, batch_size: int = 4) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=batch_size)


def fit(tmp_path: Path, module: Tiny, guard: DivergenceGuard | None, **trainer_kwargs) -> Path:
    ckpt_dir = tmp_path / "checkpoints"
    callbacks = [ModelCheckpoint(dirpath=ckpt_dir, monitor="val_loss", save_last=True)]
    trainer = pl.Trainer(
        callbacks=callbacks + ([guard] if guard else []),
        plugins=[AtomicCheckpointIO()],
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **{"max_epochs": 3, "accelerator": "cpu"} | trainer_kwargs,
    )
    trainer.fit(module, loader(), loader(16))
    return ckpt_dir


def saved_weights_are_finite(ckpt_dir: Path) -> bool:
    for path in ckpt_dir.glob("*.ckpt"):
        state = torch.load(path, weights_only=False)["state_dict"]
        if not all(torch.isfinite(t).all() for t in state.values()):
            return False
    return True


def assert_finite(module: torch.nn.Module) -> None:
    assert all(torch.isfinite(p).all() for p in module.parameters())


@pytest.mark.parametrize("k", [0, 5, 20])  # 16 steps an epoch: 20 is after a checkpoint
def test_a_non_finite_loss_at_step_k_stops_there_with_finite_weights(tmp_path, k):
    module = Tiny(nan_at_step=k)
    with pytest.raises(DivergenceError, match=rf"loss is nan at global step {k} .*optimizer\.lr"):
        fit(tmp_path, module, DivergenceGuard(None, None))
    assert module.trainer.global_step == k  # that step's update never happened
    assert_finite(module)
    assert (tmp_path / "checkpoints" / "last.ckpt").exists() == (k >= 16)
    assert saved_weights_are_finite(tmp_path / "checkpoints")


def test_without_the_guard_the_nan_reaches_the_weights_and_the_checkpoints(tmp_path):
    # what the guard prevents: the same run unguarded ends with nan weights saved as last
    module = Tiny(nan_at_step=5)
    ckpt_dir = fit(tmp_path, module, None, max_epochs=1)
    assert not saved_weights_are_finite(ckpt_dir)


def test_an_infinite_learning_rate_stops_before_non_finite_weights_are_saved(tmp_path):
    module = Tiny(lr=float("inf"))
    with pytest.raises(DivergenceError, match="non-finite .* after optimizer step 0") as err:
        fit(tmp_path, module, DivergenceGuard(None, None))
    assert "found before global step 1" in str(err.value) and "lr is inf" in str(err.value)
    assert module.trainer.global_step == 1
    assert saved_weights_are_finite(tmp_path / "checkpoints")


def test_an_exploding_learning_rate_stops_at_the_weight_norm_bound(tmp_path):
    # Adam's steps are about lr each: 1e6 makes the weights explode, finite, within a step
    module = Tiny(lr=1e6, optimizer="adam")
    with pytest.raises(
        DivergenceError,
        match=r"weight norm [\d.]+e\+06 exceeds guard.max_weight_norm=1000 at global step 1",
    ):
        fit(tmp_path, module, DivergenceGuard(None, max_weight_norm=1e3))
    assert module.trainer.global_step == 1
    assert not list((tmp_path / "checkpoints").glob("*.ckpt"))


def test_the_loss_bound(tmp_path):
    module = Tiny(lr=0.5)  # SGD at 0.5 on this problem: the loss grows step after step
    with pytest.raises(DivergenceError, match=r"exceeds guard.max_loss=100 at global step (\d+)"):
        fit(tmp_path, module, DivergenceGuard(max_loss=100.0, max_weight_norm=None))
    assert 0 < module.trainer.global_step < 16


@pytest.mark.parametrize("k", [5, 15])  # 15: the epoch's last step, then validation
def test_the_lagged_check_of_cuda_names_the_same_step_and_saves_nothing_non_finite(tmp_path, k):
    # blocking=False: read one step late (the CUDA default, without a host sync per step)
    module = Tiny(nan_at_step=k)
    with pytest.raises(DivergenceError, match=rf"loss is nan at global step {k} "):
        fit(tmp_path, module, DivergenceGuard(None, None, blocking=False))
    assert module.trainer.global_step == k + 1  # the bad update was made, then stopped
    assert saved_weights_are_finite(tmp_path / "checkpoints")


def test_a_healthy_run_is_untouched(tmp_path):
    guarded, plain = Tiny(), Tiny()
    plain.load_state_dict(guarded.state_dict())
    fit(tmp_path / "a", guarded, DivergenceGuard(max_loss=1e6, max_weight_norm=1e6), max_epochs=1)
    fit(tmp_path / "b", plain, None, max_epochs=1)
    for a, b in zip(guarded.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 0.0, -1e-3])
def test_positive_refuses_what_no_rate_or_bound_can_be(value):
    with pytest.raises(ArgumentError, match=r"^lr must be > 0, got"):
        positive("lr", value)


def test_positive_passes_positive_numbers():
    assert [positive("lr", v) for v in (0.1, 3, 1e-9)] == [0.1, 3, 1e-9]


def test_bounds_are_checked():
    with pytest.raises(ArgumentError, match="max_loss must be > 0, got -1"):
        DivergenceGuard(max_loss=-1, max_weight_norm=None)
    with pytest.raises(ArgumentError, match="max_weight_norm must be > 0, got nan"):
        DivergenceGuard(None, max_weight_norm=float("nan"))


class OneRankDiverges(Tiny):
    """Rank 1 alone sees a huge (finite) loss at step 3."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        if self.global_rank == 1 and self.global_step == 3:
            loss = loss * 0 + 1e9
        return loss


class JudgedLosses(DivergenceGuard):
    """Writes the loss each rank judges at each step, instead of stopping."""

    def __init__(self, out: str):
        super().__init__(max_loss=1e6, max_weight_norm=None)
        self.out = Path(out)

    def _judge(self, values, step, lr):
        rank = torch.distributed.get_rank()
        with open(self.out / f"rank{rank}.txt", "a") as f:
            f.write(f"{step} {values[0]}\n")


def _ddp_fit(out: str) -> None:  # run in its own process: DDP over 2 CPU processes
    trainer = pl.Trainer(
        callbacks=[JudgedLosses(out)],
        default_root_dir=out,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=1,
        limit_train_batches=5,
        limit_val_batches=0,
    )
    trainer.fit(OneRankDiverges(), loader())


@pytest.mark.slow
def test_under_ddp_every_rank_judges_the_worst_ranks_loss(tmp_path):
    # one rank stopping alone would leave the others waiting in the next gradient all-reduce
    import subprocess
    import sys

    code = f"from tests.test_guards import _ddp_fit; _ddp_fit({str(tmp_path)!r})"
    root = Path(__file__).parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    # not the exit status: a gloo worker may abort in its teardown after the fit ("terminate
    # called without an active exception"); what each rank judged, step by step, is the test
    files = [tmp_path / f"rank{r}.txt" for r in (0, 1)]
    assert all(f.is_file() for f in files), done.stderr[-3000:]
    judged = [dict(line.split() for line in f.read_text().splitlines()) for f in files]
    assert all(list(j) == ["0", "1", "2", "3", "4"] for j in judged), done.stderr[-3000:]
    assert float(judged[0]["3"]) == float(judged[1]["3"]) == 1e9  # rank 0's own loss was small
    assert float(judged[0]["2"]) < 1e3 and float(judged[1]["2"]) < 1e3
