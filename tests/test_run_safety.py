"""Nothing overwritten, nothing lost: the default results folder, finished records, damaged checkpoints,
unwritable folders and the run lock, each checked before any training."""
import json
import os
import socket
import subprocess
import sys

import pytest

from mixsuite import guard, runner
from mixsuite.config import build_config
from mixsuite.errors import RunRefused
from mixsuite.guard import RunLock
from mixsuite.report.records import results_dir
from mixsuite.task import resolve

from conftest import ROOT, record_files

SPIRALS = resolve(str(ROOT / "tasks" / "spirals")).load()
TINY = ["epochs=2", "repeats=2", "n_test_per_class=50", "grid=20", "plots=false", "progress=false"]


def cfg(*over):
    return build_config(SPIRALS.Config, [], [*TINY, *over])


def run(tmp_path, *over, log=None, **kw):
    return runner.run(SPIRALS, cfg(*over), results_dir=tmp_path / "r", runs_dir=tmp_path / "runs",
                      log=log if log is not None else (lambda *a: None), **kw)


def no_training(monkeypatch):
    def refuse(self, epoch):
        raise AssertionError("trained although the run should have stopped before training")

    monkeypatch.setattr(SPIRALS, "train_epoch", refuse)


def test_default_results_folder_is_not_the_curated_results(monkeypatch, tmp_path):
    for var in ("MIXSUITE_RESULTS", "MIXSUITE_RUNS"):
        monkeypatch.delenv(var, raising=False)
    assert results_dir() == results_dir(None) and str(results_dir()) == os.path.join("runs", "results")
    monkeypatch.setenv("MIXSUITE_RUNS", str(tmp_path / "elsewhere"))
    assert results_dir() == tmp_path / "elsewhere" / "results"
    monkeypatch.setenv("MIXSUITE_RESULTS", str(tmp_path / "mine"))
    assert results_dir() == tmp_path / "mine" and results_dir("results") == results_dir("results")


def test_a_run_without_results_dir_leaves_results_alone(cli, tmp_path):
    env = {"MIXSUITE_RESULTS": "", "MIXSUITE_RUNS": ""}
    out = cli("run", ROOT / "tasks" / "spirals", *TINY, "plots=true", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    records = record_files(tmp_path / "runs" / "results")
    assert len(records) == 1 and not (tmp_path / "results").exists()
    lines = out.stdout.splitlines()
    assert [ln.split()[0] for ln in lines if ln.startswith("epoch=")] == ["epoch=2"]   # log_every 10: the last only
    assert lines[-2] == f"record: {records[0].relative_to(tmp_path)}"
    assert lines[-1].startswith("figures: ") and "figure1.png" in lines[-1]
    assert any(ln.startswith("done spirals-manifold-") and "test_acc=" in ln for ln in lines)


def test_a_finished_run_is_not_run_again_and_reevaluation_keeps_the_old_record(tmp_path, monkeypatch):
    first = run(tmp_path)
    path = tmp_path / "r" / "runs" / "spirals" / f"{first['run_id']}.json"
    before = path.read_text()
    no_training(monkeypatch)
    logs = []
    again = run(tmp_path, log=logs.append)
    assert again == json.loads(before) and path.read_text() == before
    assert any("is finished" in ln and str(path) in ln and "--reevaluate" in ln for ln in logs)

    logs.clear()
    redone = run(tmp_path, log=logs.append, reevaluate=True)   # from the final checkpoint: no epoch trained
    aside = list(path.parent.glob(f"{path.name}.*.old"))
    assert len(aside) == 1 and aside[0].read_text() == before
    assert json.loads(path.read_text())["started_at"] == redone["started_at"]
    assert redone["metrics"]["test_acc"] == first["metrics"]["test_acc"]
    assert any(str(aside[0]) in ln for ln in logs)


def test_a_damaged_checkpoint_is_named_with_what_to_do(cli, tmp_path):
    first = run(tmp_path)
    ckpt = next((tmp_path / "runs").rglob("checkpoint.pt"))
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    out = cli("run", ROOT / "tasks" / "spirals", *TINY, "--results-dir", tmp_path / "r", "--runs-dir",
              tmp_path / "runs", "--reevaluate")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{ckpt} is damaged" in out.stderr and "--resume never" in out.stderr and f"mv {ckpt}" in out.stderr
    again = run(tmp_path, reevaluate=True, resume="never")
    assert again["metrics"]["test_nll"] == first["metrics"]["test_nll"]


def test_results_dir_under_a_regular_file_is_refused_before_training(cli, tmp_path):
    (tmp_path / "afile").write_text("x")
    out = cli("run", ROOT / "tasks" / "spirals", *TINY, "--results-dir", tmp_path / "afile" / "r",
              "--runs-dir", tmp_path / "runs")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{tmp_path / 'afile'} is a file" in out.stderr and "nothing was trained" in out.stderr
    assert not list((tmp_path / "runs").rglob("metrics.jsonl"))


def test_an_unwritable_folder_is_refused_before_training(tmp_path, monkeypatch):
    """As root every folder is writable, so the refusal of the write probe is simulated."""
    real = guard.tempfile.mkstemp

    def mkstemp(dir=None, **kw):
        if str(dir).startswith(str(tmp_path / "r")):
            raise PermissionError(13, "Permission denied")
        return real(dir=dir, **kw)

    (tmp_path / "r").mkdir()
    monkeypatch.setattr(guard.tempfile, "mkstemp", mkstemp)
    no_training(monkeypatch)
    with pytest.raises(RunRefused, match=r"results folder .* cannot be written \(Permission denied\)"):
        run(tmp_path)
    assert not (tmp_path / "runs").exists() and list((tmp_path / "r").iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_results_dir_is_refused(tmp_path, monkeypatch):
    (tmp_path / "r").mkdir()
    (tmp_path / "r").chmod(0o555)
    no_training(monkeypatch)
    with pytest.raises(RunRefused, match="cannot be written"):
        run(tmp_path)


def test_a_second_identical_run_is_refused_then_waits_when_asked(cli, tmp_path):
    run_id = runner.Engine(SPIRALS, cfg(), runs_dir=tmp_path / "runs").run_id
    lock = RunLock(tmp_path / "runs" / "spirals" / f"{run_id}.lock").acquire()
    args = ["run", ROOT / "tasks" / "spirals", *TINY, "--results-dir", tmp_path / "r", "--runs-dir", tmp_path / "runs"]
    try:
        out = cli(*args)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert f"in progress in another process (pid {os.getpid()} on host {socket.gethostname()}" in out.stderr
        assert not record_files(tmp_path / "r")
        waiting = subprocess.Popen([sys.executable, "-m", "mixsuite", *map(str, args), "--wait-lock"],
                                   env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        first = waiting.stdout.readline()
        assert first.startswith(f"waiting for pid {os.getpid()} on host"), first
    finally:
        lock.release()
    rest = waiting.communicate(timeout=300)[0]
    assert waiting.returncode == 0, rest[-2000:]
    assert len(record_files(tmp_path / "r")) == 1
    assert not (tmp_path / "runs" / "spirals" / f"{run_id}.lock").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = dead.stdout.strip()
    run_id = runner.Engine(SPIRALS, cfg(), runs_dir=tmp_path / "runs").run_id
    lock_file = tmp_path / "runs" / "spirals" / f"{run_id}.lock"
    lock_file.parent.mkdir(parents=True)
    lock_file.write_text(f"{pid} somehost\n")
    logs = []
    record = run(tmp_path, log=logs.append)
    assert record["status"] == "finished"
    assert any(f"left by pid {pid} on host somehost" in ln for ln in logs)
    assert not lock_file.exists()


def test_without_flock_the_lock_falls_back_to_lockf_and_without_both_says_what_to_do(tmp_path, monkeypatch):
    import errno
    import fcntl

    from mixsuite.errors import UserError

    def no_lock(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_lock)        # as some NFS mounts answer
    path = tmp_path / "r.lock"
    lock = RunLock(path, log=lambda m: None).acquire()
    other = subprocess.run([sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
                            "fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", str(path)], capture_output=True, text=True)
    assert other.returncode != 0 and any(e in other.stderr for e in ("BlockingIOError", "PermissionError"))
    lock.release()
    assert not path.exists()
    monkeypatch.setattr(fcntl, "lockf", no_lock)
    with pytest.raises(UserError, match="supports no file locks.*--runs-dir"):
        RunLock(path, log=lambda m: None).acquire()
