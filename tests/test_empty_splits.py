"""A run that saw no data is not a result: each task refuses an empty or too-small split before training (exit 2,
the split, the file and what it held), and a run that trained 0 steps writes no record. Data folders are faked in
tmp_path (as in test_damaged_data.py)."""
import csv
import shutil

import numpy as np
import pytest

from mixsuite.cli import main
from test_damaged_data import write_cifar_npz, write_poilus

from conftest import ROOT


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path / "cache"))


def refused(task, tmp_path, capsys, *overrides):
    """Run `task` with `overrides`: exit 2 before any record; returns stderr."""
    results = tmp_path / "results"
    rc = main(["run", str(ROOT / "tasks" / task), *overrides, "--runs-dir", str(tmp_path / "runs"),
               "--results-dir", str(results), "progress=false"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and not list(results.rglob("*.json")), err
    return err


def test_handwriting_header_only_lines_tsv(tmp_path, capsys):
    write_poilus(tmp_path / "data", n=0)     # lines.tsv holds only its header: it recorded test_cer 0 as finished
    err = refused("handwriting", tmp_path, capsys, "dataset=poilus", f"data_root={tmp_path / 'data'}")
    tsv = tmp_path / "data" / "htr_testaments_de_poilus" / "lines.tsv"
    assert f"the train split is empty: {tsv} held 0 lines (0 train, 0 val, 0 test)" in err


def test_handwriting_lines_without_a_test_split(tmp_path, capsys):
    write_poilus(tmp_path / "data", n=2)     # rows go train, val, test in turn: no test row
    err = refused("handwriting", tmp_path, capsys, "dataset=poilus", f"data_root={tmp_path / 'data'}")
    assert "the test split is empty" in err and "held 2 lines (1 train, 1 val, 0 test)" in err


def test_image_npz_with_no_test_images(tmp_path, capsys):
    path = write_cifar_npz(tmp_path / "data")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(test_jpeg=np.zeros(0, np.uint8), test_offsets=np.array([0]), test_labels=np.zeros(0, np.int64))
    np.savez(path, **arrays)
    err = refused("image", tmp_path, capsys, "dataset=cifar10-jpeg", f"data_root={tmp_path / 'data'}",
                  "train_per_class=0", "test_per_class=0")
    assert f"the test split is empty: {path} held 0 test images" in err


def write_omniglot(root, background: tuple[int, int], evaluation: tuple[int, int]):
    folder = root / "omniglot"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, shape in (("images_background", background), ("images_evaluation", evaluation)):
        np.savez(folder / f"{name}.npz", images=rng.random((*shape, 8, 8)) < 0.5)
    return folder


def test_fewshot_novel_classes_too_few_for_an_episode(tmp_path, capsys):
    folder = write_omniglot(tmp_path / "data", (12, 20), (2, 20))   # 5-way episodes need 5 novel classes
    err = refused("fewshot", tmp_path, capsys, "dataset=omniglot", f"data_root={tmp_path / 'data'}",
                  "val_classes=5", "base_classes=0", "batch_size=16", "image_size=8")
    assert (f"the test (novel) split has 2 classes (at least 5 classes needed with >= 20 images each for a 5-way "
            f"episode): {folder / 'images_evaluation.npz'} held 40 images in 2 classes") in err


def test_fewshot_base_smaller_than_one_batch(tmp_path, capsys):
    folder = write_omniglot(tmp_path / "data", (4, 20), (6, 20))
    err = refused("fewshot", tmp_path, capsys, "dataset=omniglot", f"data_root={tmp_path / 'data'}",
                  "val_classes=2", "base_classes=0", "image_size=8")     # batch_size 128 > 40 base images
    assert f"the train (base) split has 40 images (at least 128 images needed" in err
    assert str(folder / "images_background.npz") in err


def test_metric_train_smaller_than_one_batch(tmp_path, capsys):
    write_omniglot(tmp_path / "data", (4, 2), (3, 2))
    err = refused("metric", tmp_path, capsys, "dataset=omniglot", f"data_root={tmp_path / 'data'}", "val_classes=1",
                  "image_size=8", "method=erm", "loss=margin", "train_classes=0", "test_classes=0")
    assert "the train split has 6 images in whole groups (at least 112" in err and "held 6 images in 3 classes" in err


def test_metric_test_classes_with_one_image_each(tmp_path, capsys):
    write_omniglot(tmp_path / "data", (60, 2), (5, 1))    # no test query has a neighbour of its class
    err = refused("metric", tmp_path, capsys, "dataset=omniglot", f"data_root={tmp_path / 'data'}", "val_classes=2",
                  "image_size=8", "method=erm", "loss=margin", "train_classes=0", "test_classes=0")
    assert "the test split is empty" in err and "held 5 test images in 5 classes" in err


def test_graphmix_empty_test_index(shared_data, tmp_path, capsys):
    raw = tmp_path / "data" / "planetoid" / "Cora" / "raw"
    shutil.copytree(shared_data / "planetoid" / "Cora" / "raw", raw)
    (raw / "ind.cora.test.index").write_text("")
    err = refused("graphmix", tmp_path, capsys, "dataset=cora", f"data_root={tmp_path / 'data'}", "epochs=1")
    assert f"the test split is empty: {raw / 'ind.cora.test.index'} held 0 test nodes of " in err


def test_a_run_that_trained_no_step_is_not_recorded(tmp_path, capsys, monkeypatch):
    from mixsuite.plugins.spirals.task import SpiralsTask

    monkeypatch.setattr(SpiralsTask, "train_epoch", lambda self, epoch: {"loss": 0.0})   # a loader with no batch
    err = refused("spirals", tmp_path, capsys, "epochs=2", "plots=false", "n_test_per_class=5", "grid=2")
    assert "took 0 optimizer steps through the engine in 2 epochs" in err and "no record is written" in err
