"""One launch path: run_paths without an Engine, `sweep -c NAME` as `run -c NAME`, seeds given twice run once,
--jobs 0 exits 2, a setup that fails leaves no run folder, half-written checkpoints are removed on start, and
Engine.run is its start, epoch and finish steps."""
import pytest

from mixsuite import runner
from mixsuite.cli import main
from mixsuite.config import build_config
from mixsuite.engine import Engine
from mixsuite.paths import run_paths
from mixsuite.report import load_records
from mixsuite.task import resolve

from conftest import ROOT

SPIRALS = resolve(str(ROOT / "tasks" / "spirals")).load()
TINY = ["epochs=2", "repeats=2", "n_test_per_class=50", "grid=20", "plots=false", "progress=false"]


def cfg(*over):
    return build_config(SPIRALS.Config, [], [*TINY, *over])


def quiet(*a, **k):
    pass


def test_run_paths_name_the_engines_folder_and_create_nothing(tmp_path):
    c = cfg("seed=3")
    paths = run_paths(c, "spirals", tmp_path / "runs", tmp_path / "results")
    engine = Engine(SPIRALS, c, runs_dir=tmp_path / "runs", log=quiet)
    assert (paths.run_id, paths.run_dir) == (engine.run_id, engine.run_dir)
    assert paths.run_id.startswith("spirals-manifold-") and paths.run_id.endswith("-s3")
    assert paths.lock == tmp_path / "runs" / "spirals" / f"{paths.run_id}.lock"
    assert paths.record == tmp_path / "results" / "runs" / "spirals" / f"{paths.run_id}.json"
    assert list(tmp_path.iterdir()) == []


def test_sweep_finds_a_named_config_as_run_does(tmp_path, capsys):
    assert main(["sweep", "tasks/spirals", "-c", "smoke", "alpha=0.5,1", "--dry-run",
                 "--results-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    smoke = ROOT / "configs" / "spirals" / "smoke.yaml"
    expected = [run_paths(build_config(SPIRALS.Config, [smoke], [f"alpha={a}"]), "spirals").run_id
                for a in ("0.5", "1")]
    assert lines[0] == "2 points, 0 done, 2 to run"
    assert [line.split()[1] for line in lines[1:]] == expected


def test_a_seed_given_twice_runs_once_and_says_so(tmp_path, capsys):
    common = ["tasks/spirals", *TINY, "--results-dir", str(tmp_path / "r"), "--runs-dir", str(tmp_path / "runs")]
    assert main(["run", *common, "--seeds", "1", "1", "--jobs", "2"]) == 0   # one run left: nothing to race
    assert "seed 1 given more than once: it runs once" in capsys.readouterr().out
    assert [r["seed"] for r in load_records(tmp_path / "r")] == [1]
    assert main(["sweep", *common, "--seeds", "1", "1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "seed=1 is the run of seed=1" in out and "it runs once" in out and out.count("  done  ") == 1


def test_jobs_below_one_exits_2(tmp_path, capsys):
    for command in ("run", "sweep"):
        assert main([command, "tasks/spirals", *TINY, "--jobs", "0", "--runs-dir", str(tmp_path)]) == 2, command
        assert "--jobs must be at least 1, got 0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_setup_that_fails_leaves_no_run_folder(tmp_path):
    c = cfg("mix_layers=[nosuchlayer]")
    with pytest.raises(Exception, match="nosuchlayer"):
        runner.run(SPIRALS, c, results_dir=tmp_path / "r", runs_dir=tmp_path / "runs", log=quiet)
    paths = run_paths(c, "spirals", tmp_path / "runs")
    assert not paths.run_dir.exists() and not paths.lock.exists()


@pytest.mark.parametrize("resume", ["auto", "never"])
def test_a_half_written_checkpoint_is_removed_on_start(tmp_path, resume):
    c = cfg()
    run_dir = run_paths(c, "spirals", tmp_path / "runs").run_dir
    run_dir.mkdir(parents=True)
    stale = run_dir / ".checkpoint.pt.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    logs = []
    runner.run(SPIRALS, c, results_dir=tmp_path / "r", runs_dir=tmp_path / "runs", resume=resume, log=logs.append)
    assert not stale.exists() and (run_dir / "checkpoint.pt").is_file()
    assert any(str(stale) in line and "half-written" in line for line in logs)


def test_engine_run_is_start_epochs_finish(tmp_path):
    whole = Engine(SPIRALS, cfg(), runs_dir=tmp_path / "a", log=quiet).run()
    engine = Engine(SPIRALS, cfg(), runs_dir=tmp_path / "b", log=quiet)
    task = engine.start()
    logged = [engine.run_epoch(task) for _ in range(engine.cfg.epochs)]
    stepped = engine.finish(task)
    assert [m["epoch"] for m in logged] == [1, 2]
    clock = {"train_time_s", "wall_time_s"}
    assert {k: v for k, v in stepped.items() if k not in clock} == {k: v for k, v in whole.items() if k not in clock}
