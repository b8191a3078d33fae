"""GraphMix(GCN) seeds stacked (tasks/graphmix/stacked.py): one seed stacked gives its run's record metrics exactly;
several seeds give each its own run's numbers (to float tolerance), each its own draws."""
import pytest

from mixsuite import runner
from mixsuite.config import build_config

from mixsuite.plugins.graphmix.stacked import train_stacked, unsupported
from mixsuite.plugins.graphmix.task import GraphMixConfig, GraphMixTask

SHORT = ["epochs=12", "progress=false", "device=cpu"]


def per_seed(tmp_path, seed, *over):
    cfg = build_config(GraphMixConfig, [], [*SHORT, f"seed={seed}", *over])
    rec = runner.run(GraphMixTask, cfg, results_dir=tmp_path / "r", runs_dir=tmp_path / "runs", log=lambda *a: None)
    return cfg, rec["metrics"]


@pytest.mark.parametrize("method", ["graphmix", "gcn"])
def test_one_stacked_seed_is_its_run(shared_data, tmp_path, method):
    cfg, expected = per_seed(tmp_path, 3, f"method={method}")
    (got,) = train_stacked(GraphMixTask, [cfg], tmp_path / "stacked")
    assert got == expected


def test_stacked_seeds_are_their_runs(shared_data, tmp_path):
    runs = [per_seed(tmp_path, seed) for seed in (1, 2, 3)]
    stacked = train_stacked(GraphMixTask, [cfg for cfg, _ in runs], tmp_path / "stacked")
    for (_, expected), got in zip(runs, stacked):
        assert got["best_epoch"] == expected["best_epoch"]
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    assert len({s["test_nll"] for s in stacked}) == 3   # three seeds, three trainings


def test_what_stacked_seeds_do_not_cover_is_named():
    cfg = build_config(GraphMixConfig, [], ["method=graphmix", "aliased_ema=true", "dropout=0.5"])
    problems = unsupported(cfg)
    assert any("aliased_ema" in p for p in problems) and any("dropout=0.5" in p for p in problems)
    with pytest.raises(ValueError, match="aliased_ema"):
        train_stacked(GraphMixTask, [cfg], "unused")
