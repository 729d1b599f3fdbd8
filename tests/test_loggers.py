"""logger=tensorboard|csv|mlflow|wandb|many: each logger gets the same scalars, the run's choices
as hparams and the final test metrics, read back from the real stores (a local MLflow file store,
W&B's offline run file, TensorBoard's event files, the CSV)."""

import csv
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from pytorch_lightning.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from siamese.core.errors import ConfigValueError
from siamese.run.loggers import build_loggers, logger_nodes
from siamese.run.trainer import DASHBOARD_KEYS
from tests.helpers import TINY, python


def test_many_builds_every_logger_into_the_run_folder(make_config, tmp_path):
    loggers, switches = build_loggers(make_config("logger=many").logger, tmp_path, DASHBOARD_KEYS)
    kinds = [type(x) for x in loggers]
    assert kinds == [TensorBoardLogger, CSVLogger, MLFlowLogger, WandbLogger]
    board, table, flow, wandb = loggers
    assert (
        Path(board.log_dir) == tmp_path / "tensorboard" and Path(table.log_dir) == tmp_path / "csv"
    )
    assert flow.save_dir == str(tmp_path / "mlruns")  # a file store of the run's own
    assert Path(wandb.save_dir) == tmp_path
    assert switches and switches.keys() == DASHBOARD_KEYS  # the dashboards: TensorBoard's keys


def test_a_tracking_uri_sends_mlflow_elsewhere_and_csv_alone_draws_no_dashboards(
    make_config, tmp_path
):
    store = tmp_path / "shared"
    cfg = make_config("logger=mlflow", f"logger.mlflow.tracking_uri=file:{store}")
    (flow,), _ = build_loggers(cfg.logger, tmp_path / "run", DASHBOARD_KEYS)
    assert flow.save_dir == str(store)
    (table,), switches = build_loggers(make_config("logger=csv").logger, tmp_path, DASHBOARD_KEYS)
    assert isinstance(table, CSVLogger) and switches is None


def test_a_missing_logger_package_says_which_extra_to_install(make_config, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed: importing it fails
    with pytest.raises(ConfigValueError, match=r"logger.wandb needs .*siamese\[loggers\]"):
        build_loggers(make_config("logger=wandb").logger, tmp_path, DASHBOARD_KEYS)


def test_a_run_saved_with_one_unnamed_logger_still_resumes_with_it():
    saved = OmegaConf.create(
        {"_target_": "pytorch_lightning.loggers.TensorBoardLogger", "name": "t"}
    )
    assert list(logger_nodes(saved)) == ["logger"]
    assert logger_nodes(OmegaConf.create({})) == {}


def wandb_records(path: Path):
    """The protobuf records of a W&B offline run file (`run-<id>.wandb`): LevelDB's log format
    (32 KiB blocks of chunks: crc32, length, type) after a 7-byte W&B header."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, pos, block, parts = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header: padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        parts += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = Record()
            record.ParseFromString(parts)
            parts = b""
            yield record


def wandb_run(folder: Path) -> tuple[dict, dict]:
    """(config, every logged value by key, last wins) of a W&B offline run folder."""
    (path,) = folder.glob("run-*.wandb")
    config, logged = {}, {}
    for r in wandb_records(path):
        kind = r.WhichOneof("record_type")
        if kind == "config":
            config |= {i.key: json.loads(i.value_json) for i in r.config.update}
        elif kind == "history":  # a key is written whole, or as its parts
            logged |= {
                i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item
            }
    return config, logged


def train(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    out = "hydra.sweep.dir" if "-m" in overrides else "hydra.run.dir"
    return python("-m", "siamese", "train", *overrides, *TINY, f"{out}={run_dir}")


@pytest.mark.slow
def test_every_logger_of_many_gets_the_scalars_hparams_and_final_test_metrics(
    tmp_path, monkeypatch
):
    proc = train(tmp_path, "logger=many", "loss=contrastive")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    final = {k: metrics[k] for k in ("test/p_at_1", "test/auc", "test/p_at_1_untrained")}

    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    table = {k: float(r[k]) for r in rows for k in (*final, "val/p_at_1") if r.get(k)}
    hparams = OmegaConf.load(tmp_path / "csv" / "hparams.yaml")
    assert hparams.loss == "contrastive" and hparams.seed == 0

    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # as the run did: its own file store
    client = MlflowClient(f"file:{tmp_path / 'mlruns'}")
    (run,) = client.search_runs([client.get_experiment_by_name("siamese").experiment_id])
    assert run.data.params["loss"] == "contrastive" and run.info.status == "FINISHED"
    assert "val/p_at_1" in run.data.metrics and "train/loss" in run.data.metrics

    config, logged = wandb_run(next((tmp_path / "wandb").glob("offline-run-*")))
    assert config["loss"] == "contrastive" and config["seed"] == 0
    assert {"val/p_at_1", "train/loss"} <= logged.keys()

    board = {}
    for f in (tmp_path / "tensorboard").glob("events.out.tfevents.*"):
        for e in EventFileLoader(str(f)).Load():
            board |= {v.tag: v for v in e.summary.value}
    assert {"_hparams_/session_start_info", "val/p_at_1", "test/worst_errors"} <= board.keys()

    for key, value in final.items():  # the same final numbers everywhere
        assert table[key] == pytest.approx(value, abs=1e-6), key
        assert run.data.metrics[key] == pytest.approx(value, abs=1e-6), key
        assert logged[key] == pytest.approx(value, abs=1e-6), key
        assert board[key].tensor.float_val[0] == pytest.approx(value, abs=1e-6), key


@pytest.mark.slow
def test_each_job_of_a_sweep_gets_its_own_wandb_run(tmp_path):
    proc = train(tmp_path, "-m", "logger=wandb", "seed=0,1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [wandb_run(next((tmp_path / j / "wandb").glob("offline-run-*"))) for j in "01"]
    assert [config["seed"] for config, _ in runs] == [0, 1]
    for job, (_, logged) in zip("01", runs, strict=True):
        record = json.loads((tmp_path / job / "metrics.json").read_text())
        assert logged["test/p_at_1"] == pytest.approx(record["metrics"]["test/p_at_1"], abs=1e-6)
