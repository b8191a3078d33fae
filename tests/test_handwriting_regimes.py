"""Handwriting trained to convergence: the long config, and beam decoding of the weights chosen on validation."""
import pytest
import torch

from mixsuite.config import build_config

from conftest import ROOT

from mixsuite.plugins.handwriting.model import build_model
from mixsuite.plugins.handwriting.task import HandwritingConfig, HandwritingTask

SWEEP_LAYER_SETS = [["input"], ["block1"], ["block2"], ["block3"], ["input", "block1", "block2", "block3"]]


def test_long_config_and_the_sweep_layer_names():
    cfg = build_config(HandwritingConfig, [ROOT / "configs" / "handwriting" / "cpu-poilus-long.yaml"])
    assert cfg.epochs >= 60 and cfg.patience > 0 and cfg.schedule == "cosine" and cfg.decoder == "beam"
    assert (cfg.dataset, cfg.model, cfg.height, cfg.lr, cfg.batch_size) == ("poilus", "gated", 64, 0.003, 16)
    names = dict(build_model(cfg.model, 10, cfg.width, cfg.hidden, cfg.dropout).named_modules())
    for layers in SWEEP_LAYER_SETS:                      # the sets results/handwriting.md's sweep names
        assert all(k == "input" or k in names for k in layers), layers


def tiny_lines(root):
    from PIL import Image
    import numpy as np

    folder = root / "lines"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i, split in enumerate(["train"] * 16 + ["val"] * 4 + ["test"] * 4):
        Image.fromarray(rng.integers(0, 255, (32, 64 + 8 * (i % 5)), dtype=np.uint8)).save(folder / f"{i}.png")
        rows.append(f"{i}.png\t{'ab c'[: 1 + i % 4]}\t{split}")
    (folder / "labels.tsv").write_text("\n".join(rows) + "\n")


def run(tmp_path, out, *over):
    from mixsuite import runner

    cfg = build_config(HandwritingConfig, [], ["dataset=tsv:lines", f"data_root={tmp_path}", "height=32",
                                               "batch_size=8", "decoder=beam", "beam_size=4", "progress=false",
                                               "method=manifold", "alpha=0.2", *over])
    return runner.run(HandwritingTask, cfg, results_dir=tmp_path / out / "r", runs_dir=tmp_path / out / "runs",
                      log=lambda m: None)["metrics"]


def test_beam_decodes_the_weights_chosen_on_validation(tmp_path, monkeypatch):
    pytest.importorskip("flashlight.lib.text")
    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path / "cache"))
    tiny_lines(tmp_path)
    original = HandwritingTask.evaluate

    def epoch_one_is_best(self, epoch):                  # validation CER that makes epoch 1 the selected one
        return {**original(self, epoch), "val_cer": float(epoch)}

    monkeypatch.setattr(HandwritingTask, "evaluate", epoch_one_is_best)
    three = run(tmp_path, "three", "epochs=3")
    assert three["best_epoch"] == 1
    # the cosine schedule's first epoch has the same rate whatever the length: a 1-epoch run ends on epoch 1's weights
    one = run(tmp_path, "one", "epochs=1")
    for key in ("cer", "wer", "nll_per_char"):
        assert three[f"best_test_beam_{key}"] == pytest.approx(one[f"test_beam_{key}"], abs=1e-6)
        assert three[f"best_test_{key}"] == pytest.approx(one[f"test_{key}"], abs=1e-6)   # greedy, same epoch
    assert "best_test_beam_cer" in one and one["best_test_beam_cer"] == one["test_beam_cer"]
