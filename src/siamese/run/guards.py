"""Divergence caught within one step: non-finite loss, gradients or weights, or values beyond bounds.

DivergenceGuard checks, before each optimizer step, the loss, the total gradient norm and the
total weight norm with one fused computation (torch._foreach_norm into one device tensor of three
values). A non-finite value, a loss above max_loss or a weight norm above max_weight_norm raises
DivergenceError naming the global step, the quantity and its value. Weights are also checked,
with a blocking read, before every validation and every checkpoint, so no non-finite weights
become `last` or `best`.

Reading the three values costs one device-to-host read per step. On the CPU that is free, and
the check is read before the update. On CUDA (blocking=None, the default, or False) the values
are copied to pinned memory without blocking and read at the next step (or at the next validation
or checkpoint, whichever comes first): no host sync per step, and a bad step is still stopped one
step later, naming the step that went bad; its update has then reached the in-memory weights (the
run fails with them), never a checkpoint. blocking=True reads each step before its update (one
sync per step on CUDA). The lagged path is tested on the CPU (blocking=False); its CUDA calls
(pinned copy, event) were not run on a GPU here. Under DDP every rank judges the largest loss of
all ranks (one all-reduce of a scalar per step, queued on the device like the gradients'), so all
ranks stop at the same step.
"""

import math
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from siamese.core.errors import UserError, positive

ADVICE = (
    "try a lower optimizer.lr, gradient clipping (trainer.gradient_clip_val=1.0), "
    "or a learning-rate warm-up"
)


class DivergenceError(UserError, FloatingPointError):
    """Training diverged: the message names the step, the quantity, its value and what to try."""


@torch.no_grad()
def _total_norm(tensors: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """2-norm of all tensors together, as one float32 device scalar (0 for none)."""
    if not tensors:
        return torch.zeros((), device=device)
    norms = torch._foreach_norm(tensors)  # one fused kernel per dtype/device group
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))


class DivergenceGuard(Callback):
    """Stops training within one step when it diverges (see the module docstring).

    max_loss: a loss above it stops the run (None: only a non-finite loss does).
    max_weight_norm: a total weight 2-norm above it stops the run (None: only non-finite).
    blocking: read the check before each optimizer step (True) or one step later without a
    host sync (False); None: True off CUDA, False on CUDA.
    """

    def __init__(
        self,
        max_loss: float | None,
        max_weight_norm: float | None,
        blocking: bool | None = None,
    ):
        for key, bound in (("max_loss", max_loss), ("max_weight_norm", max_weight_norm)):
            if bound is not None:
                positive(key, bound)
        self.max_loss = max_loss
        self.max_weight_norm = max_weight_norm
        self.blocking = blocking
        self._losses: list[torch.Tensor] = []
        self._pending: tuple[torch.Tensor, Any, int, float] | None = None
        self._host: torch.Tensor | None = None

    # -- collecting ------------------------------------------------------------------------

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        self._losses.append(loss.detach())  # several under gradient accumulation

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        step = trainer.global_step
        device = pl_module.device
        # the scaler of fp16 AMP skips steps with inf gradients on purpose: not divergence
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        grads = [] if scaler is not None else [p.grad for p in params if p.grad is not None]
        losses = self._losses or [torch.zeros((), device=device)]
        self._losses = []
        loss = torch.stack([x.float().reshape(()) for x in losses])
        scale = getattr(scaler, "_scale", None)  # fp16 AMP hands hooks the scaled loss
        if isinstance(scale, torch.Tensor):
            loss = loss / scale.to(loss.device).float()
        # the loss that is worst: nan or inf if any is, else the largest
        worst = torch.where(torch.isfinite(loss).all(), loss.max(), loss.sum())
        if trainer.world_size > 1 and torch.distributed.is_initialized():
            # gradients and weights are the same on every rank, each rank's loss is its own: all
            # judge the worst rank's, so all stop at the same step (one rank stopping alone would
            # leave the others waiting in the next all-reduce). Non-finite as inf, which max
            # keeps; a plain all_reduce (Lightning's reduce adds a barrier, a host sync)
            worst = torch.where(torch.isfinite(worst), worst, torch.full_like(worst, math.inf))
            torch.distributed.all_reduce(worst, op=torch.distributed.ReduceOp.MAX)
        values = torch.stack(
            [worst, _total_norm(grads, device), _total_norm(list(pl_module.parameters()), device)]
        )
        lr = optimizer.param_groups[0].get("lr")
        if self._blocks(values):
            self._judge(values.tolist(), step, lr)
            return
        self._read_pending()  # the previous step's values: copied long ago, no wait
        if values.device.type == "cuda":
            if self._host is None:
                self._host = torch.empty(3, dtype=torch.float32, pin_memory=True)
            self._host.copy_(values, non_blocking=True)  # safe to reuse: the last copy was read
            event = torch.cuda.Event()
            event.record()
            self._pending = (self._host, event, step, lr)
        else:  # blocking=False off CUDA: the same order of checks, for tests
            self._pending = (values, None, step, lr)

    def _blocks(self, values: torch.Tensor) -> bool:
        if self.blocking is not None:
            return self.blocking
        return values.device.type != "cuda"  # a host read is free off CUDA

    def _read_pending(self) -> None:
        if self._pending is None:
            return
        host, event, step, lr = self._pending
        self._pending = None
        if event is not None:
            event.synchronize()
        self._judge(host.tolist(), step, lr)

    def _judge(self, values: list[float], step: int, lr: float | None) -> None:
        loss, grad_norm, weight_norm = values
        where = f"at global step {step}"
        lr_text = f" (optimizer lr is {lr:g})" if isinstance(lr, int | float) else ""
        if not math.isfinite(weight_norm):
            raise DivergenceError(
                f"weights are non-finite (total norm {weight_norm}) after optimizer step "
                f"{step - 1}, found before global step {step}{lr_text}: {ADVICE}"
            )
        if not math.isfinite(loss):
            raise DivergenceError(f"loss is {loss} {where}{lr_text}: {ADVICE}")
        if not math.isfinite(grad_norm):
            raise DivergenceError(
                f"gradient norm is {grad_norm} (non-finite or overflowing) {where}{lr_text}: {ADVICE}"
            )
        if self.max_loss is not None and loss > self.max_loss:
            raise DivergenceError(
                f"loss {loss:.4g} exceeds guard.max_loss={self.max_loss:g} {where}{lr_text}: {ADVICE}"
            )
        if self.max_weight_norm is not None and weight_norm > self.max_weight_norm:
            raise DivergenceError(
                f"total weight norm {weight_norm:.4g} exceeds guard.max_weight_norm="
                f"{self.max_weight_norm:g} {where}{lr_text}: {ADVICE}"
            )

    # -- before anything leaves the step loop: validation and checkpoints ---------------------

    def check_weights(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        """Blocking: the pending step's values, then the weights as they are now."""
        self._read_pending()
        params = list(pl_module.parameters())
        norm = float(_total_norm(params, pl_module.device))
        step = trainer.global_step
        if not math.isfinite(norm):
            raise DivergenceError(
                f"weights are non-finite (total norm {norm}) at global step {step}, after the "
                f"last optimizer step; nothing was saved: {ADVICE}"
            )
        if self.max_weight_norm is not None and norm > self.max_weight_norm:
            raise DivergenceError(
                f"total weight norm {norm:.4g} exceeds guard.max_weight_norm="
                f"{self.max_weight_norm:g} at global step {step}: {ADVICE}"
            )

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self.check_weights(trainer, pl_module)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        # raised while the checkpoint is assembled: nothing is written
        if trainer.state.fn == "fit":
            self.check_weights(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.check_weights(trainer, pl_module)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._pending = None
        self._losses = []
