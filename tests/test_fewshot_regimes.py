"""Few-shot in the literature's regimes: the Vinyals split (rotation classes), Lake's 20 one-shot runs, test ways,
selected weights, and the hashes of the committed CPU-scale records."""
import io
import json
import zipfile

import numpy as np
import pytest
import torch

from mixsuite.config import build_config, config_hash, merge

from conftest import ROOT

from mixsuite.plugins.fewshot import data, lake
from mixsuite.plugins.fewshot.task import FewShotConfig


# ---- the Vinyals split ----------------------------------------------------------------------------------------
def tiny_sets():
    """Two 'sets' of 2 characters x 3 drawings, 4x4 images whose pixels say (set, character, drawing)."""
    sets = {}
    for s, name in enumerate(("background", "evaluation")):
        images = torch.zeros(6, 1, 4, 4, dtype=torch.uint8)
        for i in range(6):
            images[i, 0, 0, 0] = 100 * s + 10 * (i // 3) + i % 3 + 1     # a corner pixel marks the image
        sets[name] = data.Split(images, torch.arange(2).repeat_interleave(3))
    return sets


def write_tsv(path):
    rows = ["char_id\tset\tindex_in_set\talphabet\tcharacter", "0001\tbackground\t0\tA\tcharacter01",
            "0002\tbackground\t1\tA\tcharacter02", "0003\tevaluation\t0\tB\tcharacter01",
            "0004\tevaluation\t1\tB\tcharacter02"]
    path.write_text("\n".join(rows) + "\n")
    return data.read_characters(path)


def test_vinyals_split_groups_rotations_of_each_character(tmp_path):
    index = write_tsv(tmp_path / "characters.tsv")
    assert index["B/character02"] == ("evaluation", 1)
    lines = [f"{c}/rot{r:03d}" for c in ("B/character02", "A/character01") for r in (270, 0, 90, 180)]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    split = data.vinyals_split(tmp_path / "train.txt", index, tiny_sets())
    assert split.rotation_groups and split.n_classes == 8 and len(split.labels) == 24
    # character B/character02 (first listed) is classes 0..3, its drawings marked 111, 112, 113 at rotation 0
    drawings = split.images[split.labels == 0]
    assert drawings[:, 0, 0, 0].tolist() == [111, 112, 113]
    for k in range(4):   # class 4i + k holds the drawings rotated by k * 90 degrees counter-clockwise
        assert torch.equal(split.images[split.labels == k], torch.rot90(drawings, k, dims=(2, 3)))
    assert split.images[split.labels == 4][:, 0, 0, 0].tolist() == [1, 2, 3]


def test_vinyals_split_refuses_bad_lines(tmp_path):
    index = write_tsv(tmp_path / "characters.tsv")
    (tmp_path / "a.txt").write_text("A/character01/rot000\nA/character01/rot090\n")
    with pytest.raises(ValueError, match="lacks some of its 4 rotations"):
        data.vinyals_split(tmp_path / "a.txt", index, tiny_sets())
    (tmp_path / "b.txt").write_text("A/character09/rot000\n")
    with pytest.raises(ValueError, match="line 1"):
        data.vinyals_split(tmp_path / "b.txt", index, tiny_sets())


def test_rotated_labels_follow_the_rotation_of_the_images(tmp_path):
    index = write_tsv(tmp_path / "characters.tsv")
    lines = [f"{c}/rot{r:03d}" for c in ("A/character01", "A/character02") for r in (0, 90, 180, 270)]
    (tmp_path / "t.txt").write_text("\n".join(lines))
    split = data.vinyals_split(tmp_path / "t.txt", index, tiny_sets())
    labels = torch.tensor([0, 1, 2, 3, 5, 7])
    assert split.rotated_labels(labels, 1).tolist() == [1, 2, 3, 0, 6, 4]
    assert split.rotated_labels(labels, 3).tolist() == [3, 0, 1, 2, 4, 6]
    for k in range(4):            # rotating the images of class c by k gives exactly the images of its class
        for c in range(8):
            rotated = torch.rot90(split.images[split.labels == c], k, dims=(2, 3))
            target = int(split.rotated_labels(torch.tensor([c]), k))
            assert torch.equal(rotated, split.images[split.labels == target])
    plain = data.Split(split.images, split.labels)            # no rotation classes: labels are kept
    assert torch.equal(plain.rotated_labels(labels, 2), labels)
    assert split.subset_classes(4).n_classes == 4
    with pytest.raises(ValueError, match="multiple of 4"):
        split.subset_classes(6)


def test_omniglot_vinyals_from_shared_data(shared_data):
    base, val, novel = data.load("omniglot-vinyals", shared_data, image_size=28)
    assert (base.n_classes, val.n_classes, novel.n_classes) == (4112, 688, 1692)
    for split in (base, val, novel):
        assert split.rotation_groups and torch.equal(torch.bincount(split.labels), torch.full((split.n_classes,), 20))
    assert torch.equal(base.images[base.labels == 6], torch.rot90(base.images[base.labels == 4], 2, dims=(2, 3)))
    # no character of the test split is in the training split (first drawings at rotation 0 compared)
    first = lambda s: s.images[(s.labels % 4 == 0)].view(-1, 20, 28 * 28)[:, 0].float()
    assert torch.cdist(first(novel), first(base)).min() > 0


# ---- Lake's runs ---------------------------------------------------------------------------------------------
def png(box):
    """A 105x105 1-bit PNG, white background, an ink rectangle (row, col, height, width)."""
    from PIL import Image

    pixels = np.ones((105, 105), bool)
    r, c, h, w = box
    pixels[r:r + h, c:c + w] = False
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


SPOTS = [(0, 0, 15, 15), (0, 45, 45, 8), (45, 0, 8, 60)]   # shapes a translation-invariant network tells apart


def lake_zip(path, answers):
    """Runs of 3 classes: training class i has its square at SPOTS[i]; test item j copies class answers[r][j]."""
    with zipfile.ZipFile(path, "w") as z:
        for r, answer in enumerate(answers, 1):
            lines = []
            for i in range(3):
                z.writestr(f"run{r:02d}/training/class{i + 1:02d}.png", png(SPOTS[i]))
            for j, a in enumerate(answer):
                z.writestr(f"run{r:02d}/test/item{j + 1:02d}.png", png(SPOTS[a]))
                lines.append(f"run{r:02d}/test/item{j + 1:02d}.png run{r:02d}/training/class{a + 1:02d}.png")
            z.writestr(f"run{r:02d}/class_labels.txt", "\n".join(lines) + "\n")
    return path


def test_lake_zip_parsing(tmp_path):
    runs = lake.load_runs(lake_zip(tmp_path / "all_runs.zip", [[2, 0, 1], [0, 1, 2]]), size=21)
    assert runs.train.shape == (2, 3, 1, 21, 21) and runs.test.shape == (2, 3, 1, 21, 21)
    assert runs.answer.tolist() == [[2, 0, 1], [0, 1, 2]]
    square = runs.train[0, 0, 0]                       # ink = 255 where the square is (area-resized 15 px -> 3 px)
    assert square[:3, :3].eq(255).all() and square[5:, 5:].eq(0).all()
    assert torch.equal(runs.test[0, 1], runs.train[0, 0]) and torch.equal(runs.test[0, 0], runs.train[0, 2])
    assert lake.find_zip(tmp_path) == tmp_path / "all_runs.zip"


def test_lake_zip_refuses_a_bad_pairing(tmp_path):
    path = lake_zip(tmp_path / "all_runs.zip", [[0, 0, 1]])           # two test items claim class 1
    with pytest.raises(ValueError, match="distinct training image"):
        lake.load_runs(path, size=21)
    with pytest.raises(Exception, match="all_runs.zip"):
        lake.find_zip(tmp_path / "nowhere")


@pytest.mark.parametrize("classifier", ["nearest", "logistic"])
def test_lake_scoring(tmp_path, classifier):
    runs = lake.load_runs(lake_zip(tmp_path / "all_runs.zip", [[2, 0, 1], [1, 2, 0]]), size=21)
    feats = lambda x: x.flatten(2).float() + 1.0
    accs = lake.run_accuracies(feats(runs.train), feats(runs.test), runs.answer, classifier)
    assert accs.tolist() == [1.0, 1.0]                        # each test item is a copy of its class's image
    wrong = runs.test.clone()
    wrong[1, 0] = runs.train[1, 0]                            # run 2, item 1 now looks like class 0, not 1
    accs = lake.run_accuracies(feats(runs.train), feats(wrong), runs.answer, classifier)
    assert accs[0] == 1.0 and accs[1] == pytest.approx(2 / 3)


# ---- config: hashes kept, new fields ---------------------------------------------------------------------------
def test_committed_records_keep_their_hash():
    records = sorted((ROOT / "results" / "runs" / "fewshot").glob("*.json"))
    assert records
    for path in records:
        rec = json.loads(path.read_text())
        assert config_hash(merge(FewShotConfig(), rec["config"])) == rec["config_hash"], path.name
    cfg = build_config(FewShotConfig, [ROOT / "configs" / "fewshot" / "cpu-omniglot.yaml"], ["method=s2m2"])
    assert config_hash(cfg) == "2ac8e7e4f7"                    # omniglot-s2m2-2ac8e7e4f7-s*.json
    assert config_hash(merge(cfg, {"ways": [5, 20]})) != "2ac8e7e4f7"


def test_named_configs():
    v = build_config(FewShotConfig, [ROOT / "configs" / "fewshot" / "omniglot-vinyals.yaml"])
    assert (v.dataset, v.backbone, v.image_size, v.test_weights) == ("omniglot-vinyals", "conv4", 28, "best")
    assert v.ways == (5, 20) and v.shots == [1, 5] and v.test_episodes >= 600 and v.patience > 0
    assert (v.schedule, v.lr, v.epochs) == ("cosine", 1e-3, 10)
    lk = build_config(FewShotConfig, [ROOT / "configs" / "fewshot" / "omniglot-lake.yaml"])
    assert (lk.dataset, lk.lake_runs, lk.test_weights) == ("omniglot", True, "best") and lk.patience > 0


def test_config_refuses_regime_combinations_by_field():
    from mixsuite.errors import ConfigError

    cases = {("dataset=omniglot-vinyals", "base_classes=6"): "base_classes: 6 would split",
             ("test_weights=best", "val_classes=0"): "test_weights: best chooses",
             ("lake_runs=true", "dataset=cub"): "lake_runs: ",
             ("ways=[5,1]",): "ways: item 1",
             ("episode_classifier=prototypes",): "episode_classifier: "}
    for overrides, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            build_config(FewShotConfig, overrides=overrides)
    ok = build_config(FewShotConfig, overrides=["dataset=omniglot-vinyals", "base_classes=8", "test_weights=best",
                                                "episode_classifier=prototype", "ways=[5,20]"])
    assert (ok.base_classes, ok.ways) == (8, (5, 20))


def synthetic_splits(n_chars=(4, 6, 6), per_class=20, size=28, seed=0):
    """(base, val, novel) of characters in 4 rotation classes each: a random prototype per character, noisy copies."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in n_chars:
        protos = (torch.rand(n, 1, size, size, generator=g) > 0.8).float() * 255
        drawings = (protos.repeat_interleave(per_class, 0) * (torch.rand(n * per_class, 1, size, size, generator=g) > 0.2))
        char = torch.arange(n).repeat_interleave(per_class)
        images = torch.cat([torch.rot90(drawings, k, dims=(2, 3)) for k in range(4)]).to(torch.uint8)
        labels = torch.cat([4 * char + k for k in range(4)])
        out.append(data.Split(images, labels, rotation_groups=True))
    return tuple(out)


@pytest.fixture
def tiny_data(monkeypatch):
    monkeypatch.setattr(data, "load", lambda *a, **k: synthetic_splits())


def run_fewshot(tmp_path, *over):
    from mixsuite import runner
    from mixsuite.plugins.fewshot.task import FewShotTask

    cfg = build_config(FewShotConfig, [ROOT / "configs" / "fewshot" / "smoke.yaml"],
                       ["progress=false", "val_episodes=20", "test_episodes=30", "classifier_steps=30", *over])
    return runner.run(FewShotTask, cfg, results_dir=tmp_path / "r", runs_dir=tmp_path / "runs", log=lambda m: None)


def test_s2m2_selects_on_its_mixup_stage_and_tests_every_way(tmp_path, tiny_data):
    rec = run_fewshot(tmp_path, "dataset=omniglot-vinyals", "base_classes=0", "n_way=5", "ways=[5,20]",
                      "test_weights=best", "patience=3", "epochs=3", "rotation_epochs=1", "method=s2m2",
                      "batch_size=64")
    m = rec["metrics"]
    for way in (5, 20):
        for shot in (1, 5):
            assert 1 / way < m[f"test_{way}way{shot}shot_acc"] <= 1.0 and 0 <= m[f"test_{way}way{shot}shot_ci95"] < 0.2
    lines = [json.loads(ln) for ln in next((tmp_path / "runs").rglob("metrics.jsonl")).read_text().splitlines()]
    assert "rotation_stage_val_acc" in lines[0] and "val_acc" not in lines[0]   # epoch 1: the rotation stage
    assert all("val_acc" in ln for ln in lines[1:]) and m["best_epoch"] >= 2


def test_best_weights_are_the_ones_tested(tmp_path, tiny_data, monkeypatch):
    from mixsuite.plugins.fewshot.task import FewShotTask

    seen = {}
    original = FewShotTask.finish

    def finish(self):
        out = original(self)
        seen["net"] = {k: v.clone() for k, v in self.net.state_dict().items()}
        seen["best"] = self.best_net
        return out

    monkeypatch.setattr(FewShotTask, "finish", finish)
    rec = run_fewshot(tmp_path, "method=baselinepp", "test_weights=best", "epochs=3", "batch_size=64")
    assert seen["best"] is not None and all(torch.equal(seen["net"][k], v) for k, v in seen["best"].items())
    last = torch.load(next((tmp_path / "runs").rglob("checkpoint.pt")), weights_only=True)["task"]
    assert rec["metrics"]["best_epoch"] in (1, 2, 3)
    assert all(torch.equal(last["best_net"][k], v) for k, v in seen["best"].items())     # resumable


def test_lake_runs_are_scored_on_the_trained_features(tmp_path, tiny_data):
    root = tmp_path / "data" / "omniglot"
    root.mkdir(parents=True)
    lake_zip(root / "all_runs.zip", [[2, 0, 1], [1, 2, 0], [0, 1, 2]])
    rec = run_fewshot(tmp_path, "lake_runs=true", "method=baselinepp", "epochs=1", "batch_size=64",
                      f"data_root={tmp_path / 'data'}")
    m = rec["metrics"]
    for name in ("", "_nn"):
        acc = m[f"lake_3way1shot{name}_acc"]
        assert acc == 1.0 and m[f"lake_3way1shot{name}_err"] == 0.0     # test items are copies of their class
        assert m[f"lake_3way1shot{name}_ci95"] == 0.0


def test_lake_runs_refuse_a_model_trained_on_their_alphabets(cli, tmp_path):
    bad = cli("run", "tasks/fewshot", "lake_runs=true", "dataset=omniglot-vinyals", "--results-dir", tmp_path / "r",
              "--runs-dir", tmp_path / "runs")
    assert bad.returncode == 2 and "background set only" in bad.stderr
    bad = cli("run", "tasks/fewshot", "test_weights=final", "--results-dir", tmp_path / "r", "--runs-dir",
              tmp_path / "runs")
    assert bad.returncode == 2 and "test_weights" in bad.stderr


def test_reference_files_name_metrics_the_named_configs_record():
    from mixsuite.report.reference import load_reference

    v = build_config(FewShotConfig, [ROOT / "configs" / "fewshot" / "omniglot-vinyals.yaml"])
    recorded = {f"test_{w}way{s}shot_acc" for w in v.ways for s in v.shots} | {"lake_20way1shot_err"}
    files = sorted((ROOT / "tasks" / "fewshot").glob("reference*.yaml"))
    refs = [load_reference(f) for f in files]
    assert {r["metric"] for r in refs} == recorded                   # one file per recorded metric, none left out
    episodic = [r for r in refs if r["metric"].startswith("test_")]
    methods = [[e["method"] for e in r["entries"]] for r in episodic]
    assert all(m == methods[0] and len(set(m)) == len(m) for m in methods)   # the same papers in every setting
    for r in episodic:
        assert all(e["dataset"] == v.dataset and 80 < e["mean"] <= 100 for e in r["entries"])
    lake_ref = next(r for r in refs if r["metric"] == "lake_20way1shot_err")
    assert all(e["dataset"] == "omniglot" and 0 < e["mean"] < 50 for e in lake_ref["entries"])


def aligned_features(n_classes=40, per_class=20, dim=32, seed=0):
    """Non-negative features that share a large common direction (mean cosine ~0.8), as pooled ReLU features do."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_classes, dim, generator=g).repeat_interleave(per_class, 0)
    feats = (3.0 + 0.6 * centres + 0.6 * torch.randn(n_classes * per_class, dim, generator=g)).relu()
    return feats, torch.arange(n_classes).repeat_interleave(per_class)


def test_prototype_classifier_is_the_nearest_normalised_class_mean():
    from mixsuite.plugins.fewshot.episodes import episode_accuracies, episode_accuracies_loop, sample_episodes

    feats, labels = aligned_features()
    s, q = sample_episodes(labels, 30, 20, 5, 15, seed=1)
    accs = episode_accuracies(feats, s, q, "prototype")
    assert torch.equal(accs, episode_accuracies_loop(feats, s, q, classifier="prototype"))
    f = torch.nn.functional.normalize(feats, dim=-1)                 # by hand, episode 0
    means = torch.stack([f[s[0, c]].mean(0) for c in range(20)])
    pred = (f[q[0].flatten()] @ torch.nn.functional.normalize(means, dim=-1).T).argmax(1)
    assert accs[0] == (pred == torch.arange(20).repeat_interleave(15)).float().mean()
    one = episode_accuracies(feats, *sample_episodes(labels, 30, 20, 1, 15, seed=1), "prototype").mean()
    assert accs.mean() > one > 0.2                                   # more shots help; far above chance (0.05)
