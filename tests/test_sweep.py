"""`mixsuite sweep`: grid parsing, every point checked before any runs, skip what is done, failures reported, and
the three executors (in-process, worker processes, Ray) writing the same records."""
import json
import re
import sys

import pytest
import torch

from mixsuite import runner
from mixsuite.cli import main
from mixsuite.errors import ConfigError
from mixsuite.guard import RunLock
from mixsuite.report import load_records
from mixsuite.sweep import parse_grid, split_values

from conftest import ROOT

SMOKE = ["-c", str(ROOT / "configs/spirals/smoke.yaml"), "epochs=2", "repeats=2", "n_test_per_class=50", "plots=false"]
GRID = ["alpha=0.5,2", "mix_layers=[hidden1],[hidden1,bottleneck]"]


def sweep(tmp_path, name, *extra):
    return main(["sweep", "spirals", *SMOKE, *GRID, "--seeds", "1", "2", "--results-dir", str(tmp_path / name),
                 "--runs-dir", str(tmp_path / name / "runs-folder"), *extra])


def metrics_by_run(folder):
    return {r["run_id"]: r["metrics"] for r in load_records(folder)}


@pytest.fixture
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")   # the worker processes' threads
    before = torch.get_num_threads()
    torch.set_num_threads(1)                      # the in-process executor's
    yield
    torch.set_num_threads(before)


def test_grid_values_split_at_top_level_commas():
    assert split_values("0.5,1,2", "alpha") == ["0.5", "1", "2"]
    assert split_values("[input],[a,b],'x,y'", "k") == ["[input]", "[a,b]", "'x,y'"]
    fixed, axes = parse_grid(["alpha=0.5,1", "epochs=3", "mix_layers=[a,b]", "optim.lr=0.1,0.01"])
    assert fixed == ["epochs=3", "mix_layers=[a,b]"]
    assert axes == [("alpha", ["0.5", "1"]), ("optim.lr", ["0.1", "0.01"])]
    with pytest.raises(ConfigError, match="unbalanced brackets"):
        split_values("[a,b", "mix_layers")
    with pytest.raises(ConfigError, match="an empty value between commas"):
        split_values("1,,2", "alpha")
    with pytest.raises(ConfigError, match="alpha is given twice"):
        parse_grid(["alpha=1,2", "alpha=3,4"])


def test_dry_run_lists_points_with_grid_items_after_the_seeds(tmp_path, capsys):
    assert main(["sweep", "spirals", "alpha=0.5,1", "--seeds", "1", "2", "mix_layers=[input],[hidden1,hidden2]",
                 "--dry-run", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "8 points, 0 done, 8 to run" and len(out) == 9
    assert out[-1].startswith("  todo  spirals-manifold-") and out[-1].endswith("-s2  alpha=1 mix_layers=[hidden1,hidden2] seed=2")
    assert main(["sweep", "spirals", "alpha=0.5,1", "--seeds", "1", "x"]) == 2
    assert "--seeds takes integers, got x" in capsys.readouterr().err


def test_points_set_keys_together_and_cross_the_grid_and_the_seeds(tmp_path, capsys):
    assert main(["sweep", "spirals", "--point", "method=erm", "--point", "method=manifold 'mix_layers=[hidden1]'",
                 "epochs=3,4", "--seeds", "1", "2", "--dry-run", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "8 points, 0 done, 8 to run"
    labels = [line.split("  ", 3)[3] for line in out[1:]]
    assert labels[:2] == ["method=erm epochs=3 seed=1", "method=erm epochs=4 seed=1"]     # seed by seed
    assert labels[4] == "method=erm epochs=3 seed=2"
    assert labels[-1] == "method=manifold mix_layers=[hidden1] epochs=4 seed=2"
    assert all(line.split()[1].startswith("spirals-" + ("erm" if "erm" in line else "manifold")) for line in out[1:])
    for point, message in [("method=erm,manifold", "a --point sets one value a key"),
                           ("epochs=5", "--point 'epochs=5' sets epochs, which the grid also sets"),
                           ("method", "'method' is not of the form key=value")]:
        assert main(["sweep", "spirals", "--point", point, "epochs=3,4", "--dry-run",
                     "--results-dir", str(tmp_path)]) == 2
        assert message in capsys.readouterr().err, point


def test_a_bad_value_anywhere_exits_2_before_anything_runs(tmp_path, capsys):
    rc = main(["sweep", "spirals", *SMOKE, "alpha=0.5,oops", "--results-dir", str(tmp_path / "r"),
               "--runs-dir", str(tmp_path / "runs")])
    assert rc == 2
    assert "alpha: expected a number, got 'oops' (grid point alpha=oops)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not (tmp_path / "runs").exists()


def test_ray_missing_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)   # import ray -> ImportError
    assert main(["sweep", "spirals", "alpha=1,2", "--ray", "--results-dir", str(tmp_path)]) == 1
    assert 'pip install -e ".[ray]"' in capsys.readouterr().err


def test_stopped_sweep_reruns_only_the_missing_points_and_reports_failures(tmp_path, monkeypatch, capsys, one_thread):
    real_run, calls = runner.run, []

    def stopped_after_three(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C during the fourth point
        calls.append(args[1].seed)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(runner, "run", stopped_after_three)
    assert sweep(tmp_path, "a") == 130   # Ctrl-C: one line, exit 130
    assert "interrupted; the same command resumes" in capsys.readouterr().err
    assert len(load_records(tmp_path / "a")) == 3
    capsys.readouterr()
    assert sweep(tmp_path, "a", "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.startswith("8 points, 3 done, 5 to run") and out.count("  done  ") == 3 and out.count("  todo  ") == 5

    def seed_2_fails(*args, **kwargs):
        if args[1].seed == 2:
            raise RuntimeError("boom on seed 2")
        return real_run(*args, **kwargs)

    assert calls == [1, 1, 1]            # seed by seed: seed 1's first three points finished; the missing ones are
    #                                      seed 1's last and seed 2's four
    monkeypatch.setattr(runner, "run", seed_2_fails)
    assert sweep(tmp_path, "a") == 1                     # a failed point: non-zero exit, the others went on
    captured = capsys.readouterr()
    assert "sweep: 1 ran, 3 skipped (already done), 4 failed" in captured.out
    assert "RuntimeError: boom on seed 2" in captured.err and "sweep.log" in captured.err
    logs = [p.read_text() for p in (tmp_path / "a" / "runs-folder" / "spirals").glob("*-s2/sweep.log")]
    assert sum("RuntimeError: boom on seed 2" in log for log in logs) == 4   # the traceback is in each point's log
    monkeypatch.setattr(runner, "run", real_run)
    assert sweep(tmp_path, "a") == 0
    assert "sweep: 4 ran, 4 skipped (already done), 0 failed" in capsys.readouterr().out
    assert len(load_records(tmp_path / "a")) == 8


def test_a_point_another_process_trains_is_skipped_not_failed(tmp_path, capsys, one_thread):
    """Two sweeps of one grid share it: the lock of a point in progress elsewhere makes this sweep go on."""
    assert sweep(tmp_path, "a", "--dry-run") == 0
    run_ids = re.findall(r"todo  (\S+)", capsys.readouterr().out)
    held = RunLock(tmp_path / "a" / "runs-folder" / "spirals" / f"{run_ids[1]}.lock").acquire()
    try:
        assert sweep(tmp_path, "a") == 0
    finally:
        held.release()
    captured = capsys.readouterr()
    assert "sweep: 7 ran, 0 skipped (already done), 1 skipped (another process trains them), 0 failed" in captured.out
    assert f"({run_ids[1]}) is being trained by another process" in captured.err
    assert sorted(r["run_id"] for r in load_records(tmp_path / "a")) == sorted(set(run_ids) - {run_ids[1]})


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    """The 2 x 2 grid with two seeds, run in this process at one thread (once for the executors' tests)."""
    tmp_path, before = tmp_path_factory.mktemp("sweep"), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert sweep(tmp_path, "in-process") == 0
    finally:
        torch.set_num_threads(before)
    return metrics_by_run(tmp_path / "in-process")


@pytest.mark.parametrize("executor", ["jobs", "ray"])
def test_executors_write_the_same_records(tmp_path, capsys, one_thread, executor, in_process, monkeypatch):
    from mixsuite.sweep import Progress

    monkeypatch.setattr(Progress, "log_refresh", 0.05)  # redrawn often: a 2-epoch point runs for well under a second
    if executor == "jobs":
        assert sweep(tmp_path, "other", "--jobs", "2") == 0
    else:
        ray = pytest.importorskip("ray")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            assert sweep(tmp_path, "other", "--ray", "--ray-cpus", "1") == 0
        finally:
            ray.shutdown()
    captured = capsys.readouterr()
    assert "sweep: 8 ran, 0 skipped (already done), 0 failed" in captured.out
    lines = [line for line in captured.err.splitlines() if line.startswith("sweep: ")]
    assert len(lines) > 1 + 8, lines      # the first line, one a finish, and redrawn while the points run
    assert any(re.search(r"running \(epochs \d+/\d+(, \d+/\d+)?\), .* ETA \d+m\d\ds", line) for line in lines), lines
    ours, theirs = in_process, metrics_by_run(tmp_path / "other")
    assert len(ours) == 8 and ours == theirs              # the same run ids, the same numbers at one thread
    assert len({json.dumps(m, sort_keys=True) for m in ours.values()}) == 8   # and the points differ


def test_the_time_to_go_shares_the_points_left_among_the_workers():
    import io

    from mixsuite.sweep import Progress

    progress = Progress(total=6, capacity=2, stream=io.StringIO())
    assert progress.line().endswith("ETA ?")
    progress.finish({"status": "finished", "run_id": "a", "seconds": 100.0}, "a")
    assert progress.line() == "sweep: 1 done, 2 running, 0 failed, 5 to go, ETA 4m10s"     # 100 s x 5 / 2
    progress.finish({"status": "failed", "run_id": "b", "seconds": 300.0, "error": "e", "log": "l"}, "b")
    assert progress.line() == "sweep: 1 done, 2 running, 1 failed, 4 to go, ETA 6m40s"     # 200 s x 4 / 2


def test_the_time_to_go_counts_the_epochs_the_running_points_have_left(tmp_path):
    """Two of six points running, 10 of 40 epochs done at 2 s an epoch: 2 x 30 x 2 s to go for them, and 4 points
    not started at 40 x 2 s each (no point has finished yet), shared by 2 workers: (120 + 320) / 2 = 220 s."""
    import io

    from mixsuite.sweep import Progress

    watched = {}
    for rid in ("a", "b", "c"):
        path = tmp_path / rid / "metrics.jsonl"
        path.parent.mkdir()
        if rid != "c":       # c has not started
            path.write_text("".join(json.dumps({"epoch": e, "loss": 1.0, "epoch_time_s": 2.0}) + "\n"
                                    for e in range(1, 11)))
        watched[rid] = (path, 40)
    progress = Progress(total=6, capacity=2, stream=io.StringIO(), watched=watched)
    assert progress.line() == "sweep: 0 done, 2 running (epochs 10/40, 10/40), 0 failed, 6 to go, ETA 3m40s"
    progress.finish({"status": "finished", "run_id": "a", "seconds": 100.0}, "a")
    # b: 30 x 2 s; 4 points not started at the finished mean, 100 s: (60 + 400) / 2 = 230 s
    assert progress.line() == "sweep: 1 done, 2 running (epochs 10/40), 0 failed, 5 to go, ETA 3m50s"
    (tmp_path / "b" / "metrics.jsonl").write_text("not json\n")      # a torn file never breaks the line
    assert progress.line() == "sweep: 1 done, 2 running, 0 failed, 5 to go, ETA 4m10s"


def test_extend_starts_each_point_from_its_shorter_run_and_gives_the_numbers_from_scratch(tmp_path, capsys, one_thread):
    def grid(name, *extra, alphas="alpha=0.5,2"):
        return main(["sweep", "spirals", *SMOKE, alphas, "--seeds", "1", "--results-dir", str(tmp_path / name),
                     "--runs-dir", str(tmp_path / name / "runs"), *extra])

    assert grid("b", "epochs=3", alphas="alpha=0.5") == 0                     # only alpha 0.5 has a shorter run
    assert grid("b", "epochs=5", "--extend", "lr=0.1") == 1                  # a bad --extend: nothing runs
    assert "only epochs and patience" in capsys.readouterr().err and len(load_records(tmp_path / "b")) == 1
    assert grid("b", "epochs=5", "--extend", "epochs=3", "--dry-run") == 0
    todo = [line for line in capsys.readouterr().out.splitlines() if "todo" in line]
    assert "(extends spirals-manifold-" in todo[0] and "to extend: fails)" in todo[1]
    assert grid("b", "epochs=5", "--extend", "epochs=3") == 1                 # alpha 2 fails, with the reason
    assert "no run of this config with epochs=3" in capsys.readouterr().err
    assert grid("a", "epochs=5", alphas="alpha=0.5") == 0                     # from scratch, elsewhere
    extended = [r for r in load_records(tmp_path / "b") if r["config"]["epochs"] == 5]
    (straight,) = load_records(tmp_path / "a")
    assert len(extended) == 1 and extended[0]["extended_from"].endswith(todo[0].split("(extends ")[1].rstrip(")"))
    assert extended[0]["metrics"]["test_nll"] == straight["metrics"]["test_nll"]
