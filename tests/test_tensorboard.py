"""tensorboard=true writes each epoch's metrics as TensorBoard scalars in the run folder; read back here."""
import json

import pytest

from mixsuite.config import build_config, config_hash
from mixsuite.runner import run
from mixsuite.task import resolve

from test_cli_and_plugins import make_tiny

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def test_the_epoch_metrics_are_read_back_from_the_event_file(tmp_path):
    task = resolve(str(make_tiny(tmp_path / "plugins", "tbtask"))).load()
    cfg = build_config(task.Config, [], ["epochs=3", "tensorboard=true", "progress=false"])
    assert config_hash(cfg) == config_hash(build_config(task.Config, [], ["epochs=3"]))  # logging is no experiment
    record = run(task, cfg, results_dir=tmp_path / "results", runs_dir=tmp_path / "runs", log=lambda m: None)
    run_dir = tmp_path / "runs" / "tbtask" / record["run_id"]
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    events = event_accumulator.EventAccumulator(str(run_dir))
    events.Reload()
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"loss", "score", "epoch_time_s"} <= set(events.Tags()["scalars"])
    for name in ("loss", "score"):
        scalars = events.Scalars(name)
        assert [s.step for s in scalars] == [1, 2, 3]
        assert [s.value for s in scalars] == pytest.approx([line[name] for line in lines], rel=1e-6)
    assert [s.value for s in events.Scalars("score")] == pytest.approx([0.25, 0.5, 0.75])


def test_off_by_default(tmp_path):
    task = resolve(str(make_tiny(tmp_path / "plugins", "tboff"))).load()
    record = run(task, build_config(task.Config, [], ["progress=false"]), results_dir=tmp_path / "r",
                 runs_dir=tmp_path / "runs", log=lambda m: None)
    assert not list((tmp_path / "runs").rglob("events.out.tfevents.*")) and record["status"] == "finished"


def test_a_resumed_run_replaces_the_epochs_it_trains_again(tmp_path):
    from mixsuite.tensorboard_log import ScalarLog

    first = ScalarLog(tmp_path, first_epoch=1)
    for epoch in (1, 2, 3):  # killed after epoch 3, checkpointed at 1
        first.add({"epoch": epoch, "loss": float(epoch)})
    first.close()
    resumed = ScalarLog(tmp_path, first_epoch=2)
    for epoch in (2, 3):
        resumed.add({"epoch": epoch, "loss": 10.0 * epoch, "note": "text", "nan": float("nan")})
    resumed.close()
    events = event_accumulator.EventAccumulator(str(tmp_path))
    events.Reload()
    assert [(s.step, s.value) for s in events.Scalars("loss")] == [(1, 1.0), (2, 20.0), (3, 30.0)]
    assert events.Tags()["scalars"] == ["loss"]
