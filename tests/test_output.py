"""What a run prints: no third-party noise, a summary at the end, an error in what the user gave
as its message alone (its traceback on demand), a bug with its traceback."""

import json
import logging
import pickle
import re
import warnings
from pathlib import Path

import pytest
import torch
from hydra.errors import CompactHydraException

from siamese.core.atomic import AtomicWriteError
from siamese.core.errors import (
    ArgumentError,
    ConfigValueError,
    DataError,
    MissingFileError,
    UserError,
)
from siamese.data.batches import SplitBatches
from siamese.data.images import ImageDecodeError
from siamese.data.imageset import ImageSet
from siamese.data.sources.synthetic import SyntheticGlyphs
from siamese.data.sources.torchvision_sets import DownloadError
from siamese.models.backbones import WeightsError
from siamese.run.guards import DivergenceError
from siamese.run.output import NOISE_LOGS, InputError, quiet, reported, summary
from siamese.run.record import RunFolderError
from tests.helpers import TINY, python, write_glyph_folder

# a Python warning as it reaches a terminal: "path/file.py:123: message"
WARNING_LINE = re.compile(r"^\S+\.py:\d+: ", re.MULTILINE)
NOISE = ("LeafSpec", "litlogger", "litmodels", "IterableDataset", "multiple `ModelCheckpoint`")


@pytest.mark.parametrize(
    "error",
    [
        ConfigValueError,
        ArgumentError,
        DataError,
        MissingFileError,
        ImageDecodeError,
        DownloadError,
        WeightsError,
        DivergenceError,
        RunFolderError,
        AtomicWriteError,
    ],
)
def test_errors_in_what_the_user_gave_are_user_errors(error):
    assert issubclass(error, UserError)


def test_a_bug_is_no_user_error():
    assert not any(issubclass(e, UserError) for e in (RuntimeError, KeyError, ValueError))


def test_quiet_holds_back_the_noise_and_nothing_else(recwarn):
    noise = [
        FutureWarning("`isinstance(treespec, LeafSpec)` is deprecated, use TreeSpec.is_leaf()"),
        UserWarning("The 'val_dataloader' does not have many workers which may be a bottleneck."),
        UserWarning("Checkpoint directory /r/checkpoints exists and is not empty."),
        UserWarning(
            "The number of training batches (23) is smaller than the logging interval "
            "Trainer(log_every_n_steps=50). Set a lower value for log_every_n_steps if you want "
            "to see logs for the training epoch."
        ),
    ]
    with quiet(ignore_warnings=False):
        for w in noise:
            warnings.warn(w, stacklevel=1)
        warnings.warn("a warning that asks something of the user", UserWarning, stacklevel=1)
    assert [str(w.message) for w in recwarn] == ["a warning that asks something of the user"]
    with quiet(ignore_warnings=True):
        warnings.warn("any", UserWarning, stacklevel=1)
    assert len(recwarn) == 1
    for w in noise:  # only within
        warnings.warn(w, stacklevel=1)
    assert len(recwarn) == 1 + len(noise)


@pytest.mark.parametrize(("name", "start"), NOISE_LOGS.items())
def test_quiet_drops_lightnings_news_within_only(name, start):
    logger = logging.getLogger(name)

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None)

    with quiet(ignore_warnings=False):
        assert not logger.filter(record(f"{start} and the rest"))
        assert logger.filter(record("Restored all states from the checkpoint at x.ckpt"))
    assert logger.filter(record(f"{start} and the rest"))


def test_a_user_error_is_reported_as_its_message_unless_its_traceback_is_asked_for(monkeypatch):
    err = ConfigValueError("loss.margin must be > 0, got -1.0")
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    shown = reported(err, traceback=False)
    assert isinstance(shown, InputError) and str(shown) == str(err)
    assert isinstance(shown, CompactHydraException)  # which Hydra prints without a traceback
    # a sweep launcher sends it back from another process
    assert str(pickle.loads(pickle.dumps(shown))) == str(err)
    assert reported(err, traceback=True) is err
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    assert reported(err, traceback=False) is err


def test_the_summary_shows_test_and_val_the_baseline_and_where_things_went():
    metrics = {
        f"{s}/{k}": v
        for s in ("test", "val")
        for k, v in {"p_at_1": 0.9, "map_at_r": 0.5, "auc": 0.95, "eer": 0.1}.items()
    }
    metrics |= {"test/p_at_1_untrained": 0.37, "test/threshold": 1.5, "test/one_shot_5way": 0.8}
    text = summary(metrics, 12.3, "best", Path("runs/x"), {"csv": "runs/x/csv"})
    assert re.search(r"P@1\s+0\.900\s+0\.900", text)
    assert re.search(r"untrained\s+0\.370", text) and re.search(r"5-way one-shot\s+0\.800", text)
    assert "τ" in text and "1.500" in text
    assert "fit in 12 s, best checkpoint tested; run folder runs/x" in text
    assert "runs/x/csv" in text and len(text.splitlines()) <= 14


def test_the_summary_shows_one_shot_within_groups_beside_the_plain_one():
    metrics = {"test/p_at_1": 0.9, "test/p_at_1_untrained": 0.4, "test/threshold": 1.0}
    metrics |= {"test/one_shot_20way": 0.93, "test/one_shot_20way_within_group": 0.85}
    metrics |= {"test/one_shot_5way_within_group": 0.96, "val/one_shot_20way_within_group": 0.8}
    text = summary(metrics, 1.0, "best", Path("runs/x"), {})
    assert re.search(r"20-way one-shot\s+0\.930", text)
    assert re.search(r"20-way in group\s+0\.850\s+0\.800", text)
    assert text.index("5-way in group") < text.index("20-way one-shot")


def test_a_split_is_evaluated_in_order_in_exactly_len_batches():
    data = ImageSet(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10), ["a"] * 10)
    batches = SplitBatches(data, batch_size=4)
    got = [batches[i]["labels"].flatten() for i in range(len(batches))]
    assert len(batches) == 3 and torch.equal(torch.cat(got), torch.arange(10))
    with pytest.raises(IndexError):
        batches[3]
    loader = torch.utils.data.DataLoader(batches, batch_size=None)
    assert len(loader) == 3 and not isinstance(batches, torch.utils.data.IterableDataset)


def train(run_dir: Path, *overrides: str, env: dict | None = None, script: str | None = None):
    """`python -m siamese train ...` (or `script` run as `python -c`) into `run_dir`."""
    args = ["-c", script] if script else ["-m", "siamese", "train"]
    out = "hydra.sweep.dir" if "-m" in overrides else "hydra.run.dir"
    return python(*args, *overrides, f"{out}={run_dir}", env=env)


@pytest.mark.slow
def test_a_run_prints_no_third_party_warning_and_ends_with_its_summary(tmp_path):
    proc = train(tmp_path, *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not WARNING_LINE.search(proc.stderr), proc.stderr
    assert not [n for n in NOISE if n in proc.stderr + proc.stdout], proc.stderr
    assert "run completed" in proc.stdout and re.search(r"P@1\s+\d\.\d{3}\s+\d\.\d{3}", proc.stdout)


@pytest.fixture
def bad_folder(tmp_path) -> Path:
    """A folder of class folders with one file that is no image."""
    glyphs = SyntheticGlyphs(num_classes=4, samples_per_class=3)(image_size=16)
    write_glyph_folder(glyphs, tmp_path / "faces")
    (tmp_path / "faces" / glyphs.class_names[0] / "scan.png").write_bytes(b"not an image")
    return tmp_path / "faces"


@pytest.mark.slow
def test_bad_data_prints_its_message_alone_exits_non_zero_and_records_failed(tmp_path, bad_folder):
    proc = train(tmp_path / "run", "data=folder", f"data.root={bad_folder}", "data.image_size=16")
    assert proc.returncode != 0
    assert "scan.png" in proc.stderr and "data.skip_bad=true" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 8
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed" and record["error"]["type"] == "DataError"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("asked", "env"),
    [(["debug=fast"], None), ([], {"HYDRA_FULL_ERROR": "1"})],
    ids=["debug", "env"],
)
def test_the_traceback_of_a_user_error_on_demand(tmp_path, bad_folder, asked, env):
    data = ["data=folder", f"data.root={bad_folder}", "data.image_size=16"]
    proc = train(tmp_path / "run", *data, *asked, env=env)
    assert proc.returncode != 0 and "scan.png" in proc.stderr
    assert "Traceback" in proc.stderr and "DataError" in proc.stderr


BUG = """
import runpy, sys
import siamese.run.job as job

def build(cfg):
    raise KeyError("a bug in the project")

job.build = build
sys.argv = ["siamese train", *sys.argv[1:]]
runpy.run_module("siamese.train", run_name="__main__")
"""


@pytest.mark.slow
def test_a_bug_in_the_project_keeps_its_traceback(tmp_path):
    proc = train(tmp_path, script=BUG)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "a bug in the project" in proc.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_a_sweep_job_with_bad_input_names_its_error_and_the_others_run(tmp_path):
    # 6 is no multiple of the P×K sampler's 4: job 0 fails before training, job 1 runs
    overrides = ["loss=triplet_batch_hard", "data.batch_size=6,8", "extras.traceback=false"]
    proc = train(tmp_path, "-m", *TINY, *overrides)
    assert proc.returncode != 0
    assert "must be a multiple of the sampler's samples_per_class=4" in proc.stderr
    assert "Traceback" not in proc.stderr
    status = [json.loads((tmp_path / j / "metrics.json").read_text())["status"] for j in "01"]
    assert status == ["failed", "completed"]
