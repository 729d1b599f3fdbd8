"""The experiment loggers of a run, from `logger=`: one (tensorboard, csv, mlflow, wandb), several
(`logger=many`, `logger=[tensorboard,csv]`) or none. Each gets the same scalars from Lightning, the
run's choices as hparams and the final test metrics; the dashboards draw on the TensorBoard one."""

import os
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

from siamese.core.errors import ConfigValueError
from siamese.run.build import build_node


def logger_nodes(node: DictConfig | None) -> dict[str, dict[str, Any]]:
    """{key: node} of each configured logger: `logger.tensorboard`, `logger.mlflow`, ... A run
    saved before loggers were named holds one node, with its `_target_`, at `logger`."""
    if not node:
        return {}
    values = OmegaConf.to_container(node, resolve=True)
    if "_target_" in values:
        return {"logger": values}
    return {f"logger.{name}": value for name, value in values.items()}


def build_loggers(
    node: DictConfig | None, run_dir: Path, dashboard_keys: frozenset[str]
) -> tuple[list[Logger], dict[str, Any] | None]:
    """The loggers, each writing under `run_dir` (its `save_dir` is relative to it), and the
    dashboards' switches, taken from the TensorBoard logger's node (None without one)."""
    loggers, switches = [], None
    for key, values in logger_nodes(node).items():
        save_dir = run_dir / values.pop("save_dir", ".")
        kind = get_class(values["_target_"])
        if issubclass(kind, TensorBoardLogger):
            switches = {k: values.pop(k) for k in dashboard_keys if k in values}
        if issubclass(kind, MLFlowLogger) and not values.get("tracking_uri"):
            # MLflow 3 refuses a new file store unless told so; ours is the run's own folder
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            loggers.append(build_node(values, key, save_dir=str(save_dir)))
        except InstantiationException as err:
            if isinstance(err.__cause__, ImportError):  # MLflow and W&B are an extra
                why = " ".join(str(err.__cause__).split())
                raise ConfigValueError(
                    f"{key} needs a package that is not installed: pip install "
                    f"'siamese[loggers]' ({why})"
                ) from err
            raise
    return loggers, switches


def log_final(
    loggers: list[Logger], choices: dict, final: dict[str, float], logged: set[str], step: int
) -> None:
    """The run's choices as hparams and the final test metrics, to every logger: those not in
    `logged` (what Lightning's test loop sent them: the untrained baseline) at `step`; TensorBoard
    takes them all beside the choices, for its HPARAMS tab."""
    params = {
        k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in choices.items()
    }
    rest = {k: v for k, v in final.items() if k not in logged}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, metrics=final)
        else:
            logger.log_hyperparams(params)
            logger.log_metrics(rest, step=step)
        logger.finalize("success")  # test() closed them; these writes must reach the disk too


def close_loggers(loggers: list[Logger], failed: bool) -> None:
    """Ends the W&B run: wandb keeps one per process, which the next job of a sweep would
    otherwise continue."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        if wandb.run is not None:
            wandb.finish(exit_code=1 if failed else 0)


def logger_places(loggers: list[Logger]) -> dict[str, str]:
    """Where each logger wrote, by its kind, for the summary at the end of a run."""
    places = {}
    for logger in loggers:
        if isinstance(logger, MLFlowLogger):
            places["mlflow"] = logger.save_dir or "logger.mlflow.tracking_uri"
        elif isinstance(logger, WandbLogger):
            places["wandb"] = str(Path(logger.save_dir) / "wandb")
        else:
            places[type(logger).__name__.removesuffix("Logger").lower()] = str(logger.log_dir)
    return places
