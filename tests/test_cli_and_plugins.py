"""The CLI and task plugins: folders inside and outside tasks/, entry points, errors, compare."""
import importlib
import json
import textwrap

import pytest

from conftest import ROOT, record_files

TINY_TASK = '''
"""A tiny task used by the tests."""
TASK = "task:TinyTask"
'''
TINY_IMPL = '''
from dataclasses import dataclass
import torch
from mixsuite.config import RunConfig
from mixsuite.task import Task


@dataclass
class TinyConfig(RunConfig):
    epochs: int = 2
    value: float = 0.25


class TinyTask(Task):
    Config = TinyConfig
    primary_metric = "score"

    def setup(self):
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.optimizer = torch.optim.SGD([self.w], lr=0.1)
        self.train_loader = [torch.ones(1)]

    def training_step(self, batch):
        return {"loss": (self.w - batch.sum()) ** 2}

    def evaluate(self, epoch):
        return {"score": self.cfg.value * epoch}
'''


def make_tiny(folder, pkg="tinytask"):
    d = folder / pkg
    d.mkdir(parents=True)
    (d / "__init__.py").write_text(TINY_TASK)
    (d / "task.py").write_text(TINY_IMPL)
    return d


def installed_entry_point(site, pkg, name):
    """A task package in `site` with a dist-info that registers it under [mixsuite.tasks] as `name`."""
    make_tiny(site, pkg)
    dist = site / f"{pkg}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {pkg.replace('_', '-')}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[mixsuite.tasks]\n{name} = {pkg}.task:TinyTask\n")
    return {"PYTHONPATH": f"{ROOT}:{site}"}


def test_list_shows_spirals(cli):
    out = cli("list")
    assert out.returncode == 0, out.stderr
    assert "spirals" in out.stdout and "Figure 1" in out.stdout


def test_folder_task_outside_tasks_dir(cli, tmp_path):
    d = make_tiny(tmp_path / "elsewhere")
    out = cli("run", d, "value=0.5", "--results-dir", tmp_path / "r", "--runs-dir", tmp_path / "runs", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rec = json.loads(record_files(tmp_path / "r")[0].read_text())
    assert rec["task"] == "tinytask" and rec["metrics"]["score"] == 1.0 and rec["metrics"]["best_score"] == 1.0


def test_entry_point_task(cli, tmp_path):
    env = installed_entry_point(tmp_path / "site", "tiny_pkg", "tiny")
    listed = cli("list", cwd=tmp_path, env=env)
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith("tiny "))  # summary: the package's doc
    assert "A tiny task used by the tests." in line and "entry point" in line, listed.stderr
    out = cli("run", "tiny", "--results-dir", tmp_path / "r", "--runs-dir", tmp_path / "runs", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    rec = json.loads(record_files(tmp_path / "r")[0].read_text())
    assert rec["task"] == "tiny" and rec["metrics"]["score"] == 0.5


def test_bad_override_exits_2_naming_key(cli, tmp_path):
    out = cli("run", "tasks/spirals", "bogus_key=1", "--runs-dir", tmp_path)
    assert out.returncode == 2
    assert "bogus_key" in out.stderr and "Traceback" not in out.stderr
    out = cli("run", "tasks/spirals", "alpah=1", "--runs-dir", tmp_path)
    assert out.returncode == 2 and "did you mean 'alpha'" in out.stderr


def test_unknown_task_and_print_config(cli, tmp_path):
    out = cli("run", "spiral", "--runs-dir", tmp_path)
    assert out.returncode == 1 and "did you mean 'spirals'" in out.stderr and "Traceback" not in out.stderr
    out = cli("run", "tasks/spirals", "alpha=0.5", "--print-config")
    assert out.returncode == 0 and "alpha: 0.5" in out.stdout


def test_smoke_run_seeds_and_compare(cli, tmp_path):
    one_thread = {"OMP_NUM_THREADS": "1"}  # as the --jobs workers below: thread counts change float sums
    out = cli("run", "tasks/spirals", "-c", "configs/spirals/smoke.yaml", "--seeds", "0", "1",
              "--results-dir", tmp_path / "D", "--runs-dir", tmp_path / "runs", env=one_thread)
    assert out.returncode == 0, out.stderr
    recs = sorted((tmp_path / "D" / "runs" / "spirals").glob("*.json"))
    assert len(recs) == 2
    run_dir = tmp_path / "runs" / "spirals" / recs[0].stem
    assert (run_dir / "figure1.png").stat().st_size > 1000 and (run_dir / "config.yaml").is_file()
    kept = recs[0].with_name(recs[0].stem + ".files") / "metrics.jsonl"   # the curves outlive the run folder
    assert kept.read_text() == (run_dir / "metrics.jsonl").read_text()
    table = cli("compare", tmp_path / "D", "--plot", tmp_path / "acc.png")
    assert table.returncode == 0 and "| spirals | manifold |" in table.stdout and "| 2 |" in table.stdout
    assert (tmp_path / "acc.png").stat().st_size > 1000
    empty = cli("compare", tmp_path / "nothing")
    assert empty.returncode == 1 and f"{tmp_path / 'nothing'}: no such folder" in empty.stderr
    side_by_side = cli("run", "tasks/spirals", "-c", "configs/spirals/smoke.yaml", "--seeds", "0", "1", "--jobs", "2",
                       "--results-dir", tmp_path / "J", "--runs-dir", tmp_path / "runs-j", env=one_thread)
    assert side_by_side.returncode == 0, side_by_side.stderr
    assert "2 runs in 2 worker processes, 1 thread each" in side_by_side.stdout   # the sweep's executor
    assert "sweep: 2 ran, 0 skipped (already done), 0 failed" in side_by_side.stdout
    for rec in recs:  # the worker processes train exactly what the one-after-another run trained
        parallel = json.loads((tmp_path / "J" / "runs" / "spirals" / rec.name).read_text())
        assert parallel["metrics"] == json.loads(rec.read_text())["metrics"]


def test_jobs_is_refused_under_torchrun_and_below_one(cli, tmp_path):
    out = cli("run", "tasks/spirals", "--seeds", "0", "1", "--jobs", "2", "--runs-dir", tmp_path,
              env={"WORLD_SIZE": "2"})
    assert out.returncode == 1 and "under torchrun" in out.stderr and "Traceback" not in out.stderr
    for command in ("run", "sweep"):   # a bad option value exits 2, as config errors do
        out = cli(command, "tasks/spirals", "--jobs", "0", "--runs-dir", tmp_path)
        assert out.returncode == 2 and "--jobs must be at least 1, got 0" in out.stderr, command


def test_duplicate_task_name_fails_loudly(cli, tmp_path):
    """A folder task and an entry point with the same name: listing says so, running by name refuses."""
    make_tiny(tmp_path / "tasks", "dup")
    env = installed_entry_point(tmp_path / "site", "dup_pkg", "dup")
    assert "ambiguous" in cli("list", cwd=tmp_path, env=env).stdout
    out = cli("run", "dup", "--runs-dir", tmp_path / "runs", cwd=tmp_path, env=env)
    assert out.returncode == 1 and "claimed by" in out.stderr and "Traceback" not in out.stderr


def test_overrides_after_options(cli):
    out = cli("run", "tasks/spirals", "-c", "configs/spirals/smoke.yaml", "alpha=0.7", "--print-config")
    assert out.returncode == 0, out.stderr
    assert "alpha: 0.7" in out.stdout and "epochs: 3" in out.stdout
    bad = cli("run", "tasks/spirals", "--bogus-flag")
    assert bad.returncode == 2 and "--bogus-flag" in bad.stderr


def test_use_task_folders_takes_a_string_and_refuses_a_missing_folder(tmp_path):
    """Notebooks pass "tasks" as a string; a wrong folder is named instead of failing later on an import."""
    from mixsuite.errors import UserError
    from mixsuite.task import use_task_folders

    folder = tmp_path / "my_tasks" / "toy"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "numbers.py").write_text("ANSWER = 42\n")
    use_task_folders(str(tmp_path / "my_tasks"))
    assert importlib.import_module("mixsuite.plugins.toy.numbers").ANSWER == 42
    with pytest.raises(UserError, match="nowhere.*not a folder"):
        use_task_folders(str(tmp_path / "nowhere"))
