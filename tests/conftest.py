import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mixsuite.report.records import record_files  # noqa: F401  (the tests' way to find records)
from mixsuite.task import use_task_folders

ROOT = Path(__file__).resolve().parents[1]
use_task_folders(ROOT / "tasks")   # tests import a task's modules as mixsuite.plugins.<task>.<module>
sys.path.append(str(ROOT / "bench"))   # tests load bench scripts, which import bench/_repo.py first
SHARED_DATA = Path(os.environ.get("MIXSUITE_DATA", "") or ROOT.parent / "shared" / "data").resolve()
if SHARED_DATA.is_dir():  # absolute, so subprocesses started in other folders find it too
    os.environ["MIXSUITE_DATA"] = str(SHARED_DATA)
# One processed-data cache for the whole session (loaders decode once; smoke runs reuse it), unless set outside.
os.environ.setdefault("MIXSUITE_CACHE", tempfile.mkdtemp(prefix="mixsuite-cache-"))


def run_cli(*args, cwd=ROOT, env=None, timeout=600):
    """`python -m mixsuite ARGS` in a subprocess; returns the CompletedProcess."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "mixsuite", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


def smoke_record(task: str, tmp_path, *extra, timeout: float = 600) -> dict:
    """`mixsuite run tasks/TASK -c configs/TASK/smoke.yaml` into tmp_path; asserts it succeeded, returns its record."""
    out = run_cli("run", f"tasks/{task}", "-c", f"configs/{task}/smoke.yaml", "--results-dir", tmp_path / "r",
                  "--runs-dir", tmp_path / "runs", *extra, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(record_files(tmp_path / "r")[0].read_text())


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set MIXSUITE_DATA)")
    return SHARED_DATA


def killed_then_resumed(task_cls, cfg, runs_dir, results_dir, monkeypatch, kill_at: int = 3, log=None):
    """Run `cfg` until a crash at the start of epoch `kill_at`, then run it again (it resumes); the resumed record."""
    from mixsuite import runner

    original = task_cls.train_epoch

    def crash(self, epoch):
        if epoch == kill_at:
            raise KeyboardInterrupt("killed")
        return original(self, epoch)

    monkeypatch.setattr(task_cls, "train_epoch", crash)
    with pytest.raises(KeyboardInterrupt):
        runner.run(task_cls, cfg, results_dir=results_dir, runs_dir=runs_dir, log=lambda *a: None)
    monkeypatch.setattr(task_cls, "train_epoch", original)
    return runner.run(task_cls, cfg, results_dir=results_dir, runs_dir=runs_dir, log=log or (lambda *a: None))
