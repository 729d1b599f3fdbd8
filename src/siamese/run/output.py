"""What a run prints: third-party messages that say nothing to a user held back, an error in what
the user gave as its message alone, and a summary table at the end."""

import logging
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.errors import CompactHydraException

from siamese.core.errors import UserError

# (category, pattern of the message's start): Python warnings that third-party code raises on every
# run of this project and that ask nothing of its user
NOISE_WARNINGS = (
    # Lightning 2.6's own use of a torch pytree class that torch 2.14 deprecates
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    # on 3 or more cores: batches are gathered from tensors on the run's device, workers would
    # only add copies (a set streamed from disk has data.loader_workers)
    (UserWarning, r"The '\w+_dataloader' does not have many workers"),
    # a resumed run writes its checkpoints where they were, under the same names, by design
    (UserWarning, r"Checkpoint directory .* exists and is not empty"),
    # an epoch (a pass) of a small set is shorter than log_every_n_steps; Lightning counts the
    # logging interval over all steps, so train/loss is still logged every n steps
    (UserWarning, r"The number of training batches \(\d+\) is smaller than the logging interval"),
)
# logger: start of message; what Lightning logs on every run that is no news to a user
NOISE_LOGS = {
    "pytorch_lightning.utilities.rank_zero": "💡 Tip:",  # advertisements for Lightning's cloud
    "pytorch_lightning.loggers.mlflow": "Experiment with name",  # a run's own store is always new
}


class DropStartingWith(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


@contextmanager
def quiet(ignore_warnings: bool) -> Iterator[None]:
    """Within: the third-party noise above held back; with `ignore_warnings`, every Python
    warning (lightning-hydra-template's `extras.ignore_warnings`)."""
    drops = [(logging.getLogger(name), DropStartingWith(s)) for name, s in NOISE_LOGS.items()]
    with warnings.catch_warnings():
        if ignore_warnings:
            warnings.simplefilter("ignore")
        for category, message in NOISE_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        for logger, drop in drops:
            logger.addFilter(drop)
        try:
            yield
        finally:
            for logger, drop in drops:
                logger.removeFilter(drop)


class InputError(CompactHydraException):
    """An error in what the user gave, as Hydra prints it: its message, no traceback. A sweep
    re-raises it after the job's batch, so it also crosses launcher processes: one string."""


def reported(err: UserError, traceback: bool) -> BaseException:
    """What a job raises for a user error: the error itself when its traceback is wanted
    (`extras.traceback`, every `debug=` option, HYDRA_FULL_ERROR=1), else InputError."""
    if traceback or os.environ.get("HYDRA_FULL_ERROR") == "1":
        return err
    return InputError(str(err))


# (metric, label) of the summary table, in its order; one-shot rows follow
ROWS = (
    ("p_at_1", "P@1"),
    ("map_at_r", "MAP@R"),
    ("auc", "ROC AUC"),
    ("eer", "EER"),
    ("accuracy", "accuracy at τ"),
)


ONE_SHOT = re.compile(r"test/one_shot_(\d+)way(_within_group)?")


def summary(
    metrics: dict[str, float], fit_s: float, tested: str, run_dir: Path, places: dict[str, str]
) -> str:
    """The table printed at the end of a run: the main test and val metrics of the `tested`
    checkpoint (best or last), the untrained baseline, τ, the fit time, and where the run and its
    loggers wrote."""
    shots = sorted(
        (int(m[1]), bool(m[2]))
        for k in metrics
        if (m := ONE_SHOT.fullmatch(k))  # one_shot_20way, one_shot_20way_within_group
    )
    rows = [*ROWS]
    for n, within in shots:
        key = f"one_shot_{n}way" + ("_within_group" if within else "")
        rows.append((key, f"{n}-way in group" if within else f"{n}-way one-shot"))
    lines = [f"{'':16s}{'test':>8s}{'val':>8s}"]
    for key, label in rows:
        test, val = metrics.get(f"test/{key}"), metrics.get(f"val/{key}")
        cells = [f"{v:8.3f}" if v is not None else f"{'':8s}" for v in (test, val)]
        lines.append(f"{label:16s}{''.join(cells)}")
        if key == "p_at_1":
            untrained = metrics["test/p_at_1_untrained"]
            lines.append(f"{'  untrained':16s}{untrained:8.3f}   (the encoder before training)")
    lines.append(f"{'τ':16s}{metrics['test/threshold']:8.3f}   (chosen on val, applied to test)")
    lines.append(f"fit in {fit_s:.0f} s, {tested} checkpoint tested; run folder {run_dir}")
    lines += [f"  {kind:12s}{where}" for kind, where in places.items()]
    return "\n".join(lines)
