"""metrics.json: refusal of another run's folder, resume, interruption, a full disk."""

import json
import os
import time

import pytest

from siamese.run.record import (
    COMPLETED,
    FAILED,
    MISSING,
    RunFolderError,
    RunRecord,
    check_run_folder,
    newest_checkpoint,
    read_record,
    read_summary,
)
from tests.test_atomic import disk_full

INFO = {"name": "r", "seed": 0, "environment": {"host": "a", "pid": 1}}


def test_a_new_folder_and_a_finished_one(tmp_path):
    assert check_run_folder(tmp_path) is None and check_run_folder(tmp_path, resume=True) is None
    record = RunRecord(tmp_path, INFO)
    assert read_record(tmp_path)["status"] == "running" and not record.resumed
    record.complete()
    for resume in (False, True):
        with pytest.raises(RunFolderError, match="completed: a run folder is never reused"):
            check_run_folder(tmp_path, resume)
    with pytest.raises(FileExistsError, match="never reused"):
        RunRecord.open(tmp_path, INFO, resume=True)


@pytest.mark.parametrize("ending", ["running", "interrupted", "failed"])
def test_an_unfinished_run_is_refused_unless_resumed(tmp_path, ending):
    record = RunRecord(tmp_path, INFO)
    if ending == "interrupted":
        record.interrupt("SIGTERM", step=7, epoch=0, checkpoint="checkpoints/last.ckpt")
    elif ending == "failed":
        record.fail(RuntimeError("out of memory"))
    before = (tmp_path / "metrics.json").read_text()
    with pytest.raises(RunFolderError, match=f"status {ending}.*resume={tmp_path}"):
        check_run_folder(tmp_path)
    with pytest.raises(RunFolderError):
        RunRecord(tmp_path, INFO)
    assert (tmp_path / "metrics.json").read_text() == before  # the refusal touched nothing
    assert check_run_folder(tmp_path, resume=True)["status"] == ending


def test_resume_keeps_everything_and_appends_the_history(tmp_path):
    first = RunRecord(tmp_path, INFO)
    first.update(metrics={"val/auc": 0.5})
    first.interrupt("SIGTERM", step=7, epoch=0, checkpoint="last.ckpt")
    again = RunRecord.open(
        tmp_path, INFO | {"environment": {"host": "b", "pid": 2}}, resume=True, step=7, epoch=0
    )
    assert again.resumed
    data = read_record(tmp_path)
    assert data["status"] == "running" and data["error"] is None
    assert data["metrics"] == {"val/auc": 0.5} and data["name"] == "r"
    assert data["environment"]["host"] == "a"  # the run's own info is the first part's
    assert data["times"]["started_at"] == first.data["times"]["started_at"]
    [interruption] = data["interruptions"]
    assert interruption["reason"] == "SIGTERM" and interruption["step"] == 7
    [resume] = data["resumes"]
    assert resume["previous_status"] == "interrupted" and resume["step"] == 7
    assert resume["environment"]["host"] == "b"
    again.complete()
    data = read_record(tmp_path)
    assert data["status"] == "completed" and data["times"]["total_s"] > 0


def test_a_kill_9_then_a_resume(tmp_path):
    RunRecord(tmp_path, INFO)  # killed: nothing recorded its end
    (tmp_path / ".metrics.json.x1y2.tmp").write_text('{"status": "runn')  # killed mid-write
    RunRecord.open(tmp_path, INFO, resume=True)
    assert read_record(tmp_path)["resumes"][0]["previous_status"] == "running"
    assert sorted(os.listdir(tmp_path)) == ["metrics.json"]


def test_a_requeued_slurm_job_resumes_its_own_unfinished_folder(tmp_path, monkeypatch):
    RunRecord(tmp_path, INFO).interrupt("SIGUSR2", step=3)
    with pytest.raises(FileExistsError, match="never reused"):
        RunRecord(tmp_path, INFO)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    record = RunRecord.open(tmp_path, INFO)  # the requeued job: no resume= on its command line
    assert (
        record.resumed and read_record(tmp_path)["resumes"][0]["previous_status"] == "interrupted"
    )
    RunRecord(tmp_path, INFO)  # the old constructor takes it back the same way
    record.complete()
    with pytest.raises(FileExistsError, match="completed"):  # but never a finished run's
        RunRecord(tmp_path, INFO)


def test_a_full_disk_keeps_the_previous_record_and_raises_the_cause(tmp_path, monkeypatch):
    record = RunRecord(tmp_path, INFO)
    before = (tmp_path / "metrics.json").read_text()
    disk_full(monkeypatch)
    with pytest.raises(OSError, match="metrics.json: No space left on device"):
        record.fail(RuntimeError("boom"))
    assert (tmp_path / "metrics.json").read_text() == before
    assert json.loads(before)["status"] == "running"
    assert os.listdir(tmp_path) == ["metrics.json"]  # no metrics.json.tmp


def test_an_unreadable_record_is_refused_untouched(tmp_path):
    (tmp_path / "metrics.json").write_text("{half")
    with pytest.raises(RunFolderError, match="not a run record"):
        check_run_folder(tmp_path, resume=True)
    assert (tmp_path / "metrics.json").read_text() == "{half"


def test_the_summary_a_report_reads(tmp_path):
    missing = read_summary(tmp_path)
    assert (missing.status, missing.problem, missing.metrics) == (MISSING, "no metrics.json", {})
    record = RunRecord(tmp_path, INFO | {"overrides": ["seed=3", "+a.b=1"]})
    running = read_summary(tmp_path)  # killed: nobody will record its end
    assert running.status == MISSING and running.problem == "status 'running' (killed mid-run?)"
    assert running.overrides == ["seed=3", "+a.b=1"] and running.seed == "0"
    record.update(metrics={"test/p_at_1": 1, "note": "text", "flag": True})
    record.complete()
    done = read_summary(tmp_path)
    assert done.status == COMPLETED and done.metrics == {"test/p_at_1": 1.0}
    assert done.times["total_s"] > 0 and done.problem == ""
    (tmp_path / "metrics.json").write_text(
        '{"status": "failed", "error": {"type": "E", "message": "a\\n  b"}}'
    )
    failed = read_summary(tmp_path)
    assert (failed.status, failed.problem, failed.metrics) == (FAILED, "E: a b", {})
    assert failed.overrides is None and failed.seed is None
    for text in ("{half", "[]"):
        (tmp_path / "metrics.json").write_text(text)
        bad = read_summary(tmp_path)
        assert bad.status == MISSING and bad.problem.startswith("unreadable metrics.json: ")


def test_ddp_ranks_above_0_write_nothing_and_check_nothing(tmp_path):
    RunRecord(tmp_path, INFO)
    before = (tmp_path / "metrics.json").read_text()
    RunRecord.open(tmp_path, INFO, write=False).complete()
    assert (tmp_path / "metrics.json").read_text() == before


def test_newest_checkpoint(tmp_path):
    assert newest_checkpoint(tmp_path / "none") is None
    (tmp_path / "best.ckpt").write_text("b")
    (tmp_path / ".last.ckpt.ab.tmp").write_text("partial")
    assert newest_checkpoint(tmp_path).name == "best.ckpt"
    time.sleep(0.01)
    (tmp_path / "last.ckpt").write_text("l")
    os.utime(tmp_path / "best.ckpt", ns=(1, 1))
    assert newest_checkpoint(tmp_path).name == "last.ckpt"
