"""The engine: seeds reproduce, a crashed run resumes to the same result, NaN stops the run, DDP matches."""
import json
import os
import subprocess
import sys

import pytest
import torch

from mixsuite import runner
from mixsuite.config import build_config
from mixsuite.engine import NonFiniteLoss
from mixsuite.task import resolve

from conftest import ROOT, killed_then_resumed, record_files

SPIRALS = resolve(str(ROOT / "tasks" / "spirals")).load()
SHORT = ["epochs=4", "repeats=4", "n_test_per_class=100", "plots=false", "progress=false"]


def cfg(*over):
    return build_config(SPIRALS.Config, [], [*SHORT, *over])


def quiet(*a, **k):
    pass


def test_same_seed_same_numbers_other_seed_differs(tmp_path):
    a = runner.run(SPIRALS, cfg(), results_dir=tmp_path / "ra", runs_dir=tmp_path / "a", log=quiet)
    b = runner.run(SPIRALS, cfg(), results_dir=tmp_path / "rb", runs_dir=tmp_path / "b", log=quiet)
    c = runner.run(SPIRALS, cfg("seed=1"), results_dir=tmp_path / "r", runs_dir=tmp_path / "c", log=quiet)
    assert a["metrics"]["test_nll"] == b["metrics"]["test_nll"]
    assert a["metrics"]["test_nll"] != c["metrics"]["test_nll"]


@pytest.mark.parametrize("seconds", [0, 3600])
def test_killed_run_resumes_to_same_result(tmp_path, monkeypatch, seconds):
    """checkpoint_seconds=0: a checkpoint every epoch, the rerun resumes after epoch 2; 3600: none before the last
    epoch, the rerun starts over; the same numbers either way."""
    full = runner.run(SPIRALS, cfg(), results_dir=tmp_path / "r1", runs_dir=tmp_path / "full", log=quiet)
    logs = []
    resumed = killed_then_resumed(SPIRALS, cfg(f"checkpoint_seconds={seconds}"), tmp_path / "broken", tmp_path / "r2",
                                  monkeypatch, log=logs.append)
    assert any("resumed" in line and "epoch 2" in line for line in logs) == (seconds == 0)
    for key in ("test_nll", "test_acc", "best_test_acc", "boundary_distance"):
        assert resumed["metrics"][key] == full["metrics"][key], key
    lines = (tmp_path / "broken" / "spirals" / resumed["run_id"] / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [1, 2, 3, 4]


def test_checkpoints_wait_checkpoint_seconds_between_them(tmp_path, monkeypatch):
    import mixsuite.checkpoint
    import mixsuite.engine

    now, saved = [0.0], []
    original_train, original_save = SPIRALS.train_epoch, mixsuite.checkpoint.save

    def train_epoch(self, epoch):   # each epoch takes 10 s on the engine's clock
        now[0] = 10.0 * epoch
        return original_train(self, epoch)

    def save(path, state):
        saved.append(state["epoch"])
        original_save(path, state)

    monkeypatch.setattr(SPIRALS, "train_epoch", train_epoch)
    monkeypatch.setattr(mixsuite.checkpoint, "save", save)
    monkeypatch.setattr(mixsuite.engine.time, "monotonic", lambda: now[0])
    runner.run(SPIRALS, cfg("epochs=8", "checkpoint_seconds=25"), results_dir=tmp_path / "r", runs_dir=tmp_path / "a",
               log=quiet)
    assert saved == [3, 6, 8]   # 30 s after the start, 30 s after that, and the last epoch
    saved.clear()
    now[0] = 0.0
    runner.run(SPIRALS, cfg("epochs=8", "checkpoint_seconds=25", "checkpoint_every=2"), results_dir=tmp_path / "r2",
               runs_dir=tmp_path / "b", log=quiet)
    assert saved == [4, 8]      # the epoch cadence first: epochs 2, 4, 6, of which 4 is 25 s after the start


def test_nan_loss_stops_and_keeps_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLoss, match="nan|inf"):
        runner.run(SPIRALS, cfg("lr=1e30"), results_dir=tmp_path / "r", runs_dir=tmp_path / "runs", log=quiet)
    recs = record_files(tmp_path / "r")
    assert len(recs) == 1 and json.loads(recs[0].read_text())["status"] == "diverged"


def test_record_fields(tmp_path):
    rec = runner.run(SPIRALS, cfg(), results_dir=tmp_path / "r", runs_dir=tmp_path / "runs", log=quiet)
    for key in ("task", "dataset", "method", "seed", "metrics", "primary_metric", "config", "config_hash",
                "git_sha", "git_dirty", "mixsuite_version", "torch_version", "device", "world_size", "started_at",
                "wall_time_s", "status"):
        assert key in rec, key
    assert rec["status"] == "finished" and rec["world_size"] == 1 and rec["device"] == "cpu"
    assert 0.0 <= rec["metrics"]["test_ece"] <= 1.0
    # what a CPU rerun must match to give the same digits: the thread count and the kernels' instruction set
    assert rec["torch_threads"] == torch.get_num_threads()
    assert rec["cpu"]["capability"] == torch.backends.cpu.get_cpu_capability() and rec["cpu"]["model"]


@pytest.mark.torchrun
def test_two_gloo_processes_match_one_process(tmp_path):
    """DDP with 2 CPU processes (global batch 50 = 2 x 25) vs 1 process (batch 50), ERM so the pairing cannot
    differ: the same global batches, gradients averaged, so the results agree to float round-off (1e-5)."""
    args = ["run", str(ROOT / "tasks" / "spirals"), *SHORT, "method=erm", "device=cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "mixsuite", *args, "--results-dir", tmp_path / "r1",
                          "--runs-dir", tmp_path / "x1"], env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "mixsuite", *args, "--results-dir", tmp_path / "r2", "--runs-dir", tmp_path / "x2"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    r1 = json.loads(record_files(tmp_path / "r1")[0].read_text())
    r2 = json.loads(record_files(tmp_path / "r2")[0].read_text())
    assert r2["world_size"] == 2
    for key in ("test_nll", "bottleneck_sv_overall_top1"):
        assert abs(r1["metrics"][key] - r2["metrics"][key]) <= 1e-5 * max(1.0, abs(r1["metrics"][key])), key
    assert r1["metrics"]["test_acc"] == r2["metrics"]["test_acc"]


@pytest.mark.parametrize("cpu_channels_last", [False, True])
def test_channels_last_on_cpu_only_when_asked(cpu_channels_last, tmp_path):
    """`channels_last` is for CUDA; on CPU a model and its 4-D float inputs change layout only with
    cpu_channels_last=true (bench/memory_format.py measures it), and that flag keeps the config's hash."""
    from mixsuite.config import config_hash
    from mixsuite.engine import Engine

    c = cfg("device=cpu", f"cpu_channels_last={str(cpu_channels_last).lower()}")
    assert (config_hash(c) == config_hash(cfg("device=cpu"))) == (not cpu_channels_last)
    eng = Engine(SPIRALS, c, runs_dir=tmp_path, log=quiet)
    net = eng.prepare(torch.nn.Conv2d(3, 4, 3), ddp=False)
    x = eng.to_device(torch.randn(2, 3, 5, 5))
    assert net.weight.is_contiguous(memory_format=torch.channels_last) == cpu_channels_last
    assert x.is_contiguous(memory_format=torch.channels_last) == cpu_channels_last
    assert eng.to_device(torch.zeros(2, 3, 5, 5, dtype=torch.uint8)).is_contiguous()   # only float inputs move


def test_a_checkpoint_without_a_state_the_task_keeps_now_names_it():
    from mixsuite.errors import UserError
    from mixsuite.task import Task

    class Kept(Task):
        name = "kept"
        state_attrs = ("net", "scheduler")

    task = Kept.__new__(Kept)
    task.net = torch.nn.Linear(2, 1)
    task.scheduler = None
    with pytest.raises(UserError, match=r"no state for scheduler: .*older kept task.*--resume never"):
        task.load_state_dict({"net": task.net.state_dict()})
    before = task.net.weight.clone()
    other = torch.nn.Linear(2, 1)
    task.scheduler = torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD(other.parameters(), lr=1.0), lambda e: 1.0)
    task.load_state_dict({"net": other.state_dict(), "scheduler": task.scheduler.state_dict()})
    assert torch.equal(task.net.weight, other.weight) and not torch.equal(task.net.weight, before)


def test_log_lines_give_the_time_left_from_the_mean_epoch_so_far():
    from mixsuite.engine import time_left

    assert time_left(4, 40.0, 6, early_stopping=False) == " eta=1m00s"       # 10 s an epoch, 6 to go
    assert time_left(2, 3600.0, 3, early_stopping=True) == " eta<=1h30m"     # patience may end it sooner
    assert time_left(0, 0.0, 5, early_stopping=False) == "" and time_left(5, 50.0, 0, early_stopping=False) == ""
