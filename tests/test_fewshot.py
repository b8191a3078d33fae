"""Few-shot: episode sampler, CI formula, rotations, batched evaluator vs the loop, loaders, smoke run."""
import json
import math

import numpy as np
import pytest
import torch

from mixsuite.errors import DataNotFound

from conftest import ROOT, record_files

from mixsuite.plugins.fewshot import data
from mixsuite.models import Conv4, ResNet12
from mixsuite.plugins.fewshot.backbones import wrn
from mixsuite.plugins.fewshot.episodes import (episode_accuracies, episode_accuracies_loop, mean_ci95,
                                               sample_episodes)
from mixsuite.plugins.fewshot.heads import CosineClassifier, rotate_batch


def labels_of(n_classes=12, per_class=(20,)):
    counts = [per_class[i % len(per_class)] for i in range(n_classes)]
    return torch.cat([torch.full((c,), i) for i, c in enumerate(counts)])


def test_episode_sampler_counts_disjoint_and_seeded():
    labels = labels_of(12, per_class=(20, 25, 30))
    s, q = sample_episodes(labels, 50, n_way=5, n_shot=3, n_query=7, seed=0)
    assert s.shape == (50, 5, 3) and q.shape == (50, 5, 7)
    for e in range(50):
        ways = labels[s[e, :, 0]]
        assert len(ways.unique()) == 5                                   # 5 distinct classes
        assert (labels[s[e]] == ways[:, None]).all() and (labels[q[e]] == ways[:, None]).all()
        assert len(set(s[e].flatten().tolist()) | set(q[e].flatten().tolist())) == 50   # disjoint, no repeats
    s2, q2 = sample_episodes(labels, 50, 5, 3, 7, seed=0)
    assert torch.equal(s, s2) and torch.equal(q, q2)
    assert not torch.equal(s, sample_episodes(labels, 50, 5, 3, 7, seed=1)[0])
    _, q_all = sample_episodes(labels, 4, 5, 1, -1, seed=0)
    assert q_all.shape == (4, 5, 19)                                     # every remaining image of the smallest class
    with pytest.raises(ValueError, match="need"):
        sample_episodes(labels, 2, 5, 10, 15, seed=0)


def test_ci95_formula():
    accs = torch.tensor([0.5, 0.7, 0.9, 0.6])
    mean, ci = mean_ci95(accs)
    assert math.isclose(mean, 0.675, rel_tol=1e-6)
    assert math.isclose(ci, 1.96 * np.std([0.5, 0.7, 0.9, 0.6]) / 2.0, rel_tol=1e-6)


def test_rotation_labels_match_angles():
    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.float).view(2, 1, 3, 3)
    xr, yr = rotate_batch(x)
    assert xr.shape == (8, 1, 3, 3) and yr.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(xr[0], x[0]) and torch.equal(xr[2], torch.rot90(x[0], 1, (1, 2)))
    assert torch.equal(xr[4], x[0].flip(1).flip(2))                    # 180 degrees
    assert torch.equal(torch.rot90(xr[6], 1, (1, 2)), x[0])            # 270 + 90 = identity


@pytest.mark.parametrize("classifier", ["logistic", "cosine"])
def test_batched_evaluator_equals_loop(classifier):
    torch.manual_seed(0)
    labels = labels_of(10, (20,))
    feats = torch.randn(10, 16).repeat_interleave(20, 0) + 1.5 * torch.randn(200, 16)
    s, q = sample_episodes(labels, 12, 5, 2, 6, seed=3)
    batched = episode_accuracies(feats, s, q, classifier, steps=40, chunk=5)
    loop = episode_accuracies_loop(feats, s, q, classifier=classifier, steps=40)
    assert torch.allclose(batched, loop, atol=1e-6)
    assert 0.3 < batched.mean() <= 1.0                                   # far above chance (0.2)


def test_backbones_expose_mixing_points():
    for net, x in [(Conv4(1), torch.randn(2, 1, 28, 28)), (ResNet12(3, (8, 8, 8, 8)), torch.randn(2, 3, 32, 32)),
                   (wrn(3, 10, 1), torch.randn(2, 3, 32, 32))]:
        names = dict(net.named_modules())
        assert {"block1", "block2", "block3"} <= names.keys()
        assert net(x).shape == (2, net.out_dim)
    head = CosineClassifier(4, 3, scale=2.0)
    out = head(torch.randn(5, 4))
    assert out.abs().max() <= 2.0 + 1e-6


def test_omniglot_from_shared_data(shared_data):
    base, val, novel = data.load("omniglot", shared_data, image_size=28, val_classes=64)
    assert base.n_classes == 900 and val.n_classes == 64 and novel.n_classes == 659
    assert len(base.labels) == 900 * 20 and len(novel.labels) == 659 * 20
    assert base.images.shape[1:] == (1, 28, 28) and base.images.dtype == torch.uint8
    assert 0.05 < base.images.float().mean() / 255 < 0.4                # ink is the minority of pixels


def test_folder_layout_and_missing(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path / "cache"))
    for split, n_cls in [("train", 3), ("val", 2), ("test", 2)]:
        for c in range(n_cls):
            d = tmp_path / "CUB" / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(4):
                Image.fromarray(np.full((10, 12, 3), 40 * c + i, np.uint8)).save(d / f"{i}.jpg")
    base, val, novel = data.load("cub", tmp_path, image_size=8)
    assert base.images.shape == (12, 3, 8, 8) and base.n_classes == 3 and novel.n_classes == 2
    with pytest.raises(DataNotFound, match="miniImageNet"):
        data.load("miniimagenet", tmp_path, image_size=8)


def test_smoke_config(cli, tmp_path, shared_data):
    out = cli("run", "tasks/fewshot", "-c", "configs/fewshot/smoke.yaml", "--results-dir", tmp_path / "r",
              "--runs-dir", tmp_path / "runs")
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads(record_files(tmp_path / "r")[0].read_text())["metrics"]
    assert 0.2 < m["test_5way1shot_acc"] <= 1.0 and 0.2 < m["test_5way5shot_acc"] <= 1.0
    assert m["test_5way5shot_acc"] > m["test_5way1shot_acc"]
    assert 0 < m["test_5way1shot_ci95"] < 0.1
    epochs = [json.loads(ln) for ln in next((tmp_path / "runs").rglob("metrics.jsonl")).read_text().splitlines()]
    assert epochs and all(0 < e["images_per_s"] < 1e6 for e in epochs)     # the training rate of every epoch
    # flattening on the novel classes' features: the record's summary is the saved spectra's
    from mixsuite.analysis import effective_rank
    spectra = json.loads(next((tmp_path / "runs").rglob("spectra.json")).read_text())["per_class"]
    eranks = [effective_rank(torch.tensor(v)) for v in spectra.values()]
    assert 1 <= len(spectra) <= 100 and m["feature_sv_class_mean_erank"] == pytest.approx(sum(eranks) / len(eranks))


@pytest.mark.parametrize("name,image,rot,total,queries,episodes", [
    ("miniimagenet", 80, 400, 500, -1, 10000), ("cub", 80, 200, 300, 15, 600), ("cifar-fs", 32, 400, 500, -1, 10000)])
def test_paper_configs_carry_s2m2_hyperparameters(name, image, rot, total, queries, episodes):
    from mixsuite.config import build_config
    from mixsuite.plugins.fewshot.task import FewShotConfig

    cfg = build_config(FewShotConfig, [ROOT / "configs" / "fewshot" / f"paper-{name}.yaml"])
    assert (cfg.dataset, cfg.method, cfg.backbone) == (name, "s2m2", "wrn28-10")
    assert (cfg.image_size, cfg.rotation_epochs, cfg.epochs) == (image, rot, total)
    assert (cfg.lr, cfg.alpha, cfg.batch_size, cfg.head_scale) == (1e-3, 2.0, 64, 2.0)
    assert cfg.mix_layers == ["input", "block1", "block2", "block3"]
    assert (cfg.n_way, cfg.shots, cfg.n_query, cfg.test_episodes) == (5, [1, 5], queries, episodes)
    assert cfg.episode_classifier == "cosine"


def _copy_state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("rotation_classes", [False, True])
def test_s2m2_step_is_one_forward_one_backward_with_the_papers_loss(tmp_path, rotation_classes):
    """The S2M2 step goes once through the (DDP-wrapped) module (the engine calls backward once); its loss and
    gradients equal the two-pass formula (mixed CE, then 0.5 CE(class) + 0.5 CE(rotation) on a quarter).
    Where every rotation is a class (omniglot-vinyals: class 4c + k), a rotated image's class target is its
    rotated class; else it keeps its class."""
    import torch.nn.functional as F

    from mixsuite.config import build_config
    from mixsuite.engine import Engine
    from mixsuite.plugins.fewshot.task import FewShotConfig, FewShotTask

    cfg = build_config(FewShotConfig, [], ["device=cpu", "method=s2m2"])
    task = FewShotTask(cfg, Engine(FewShotTask, cfg, runs_dir=tmp_path))
    n_classes = 8 if rotation_classes else 6
    task.build(channels=1, n_classes=n_classes)
    torch.manual_seed(3)
    x, y = torch.randn(16, 1, 28, 28), torch.arange(16) % n_classes
    task.base = data.Split(x, y, rotation_groups=rotation_classes)
    net, mixer = task.net, task.mixer
    start = {"net": _copy_state(net), "mix": mixer.generator.get_state(), "quarter": task.quarter.get_state()}

    # the previous formula, two passes, on a copy of the starting state
    net.train()
    with mixer.step(len(x)) as plan:
        out = net(x)
    expected = plan.mix_loss(lambda o, t: F.cross_entropy(o, t, reduction="none"), out, y)
    q = torch.randperm(len(x), generator=task.quarter)[:4]
    xr, yr = rotate_batch(x[q])
    h = net.backbone(xr)
    yq = y[q]
    targets = torch.cat([4 * (yq // 4) + (yq + k) % 4 for k in range(4)]) if rotation_classes else yq.repeat(4)
    expected = expected + 0.5 * F.cross_entropy(net.classifier(h), targets) \
        + 0.5 * F.cross_entropy(net.rotation(h), yr)
    expected.backward()
    expected_grads = {n: p.grad.clone() for n, p in net.named_parameters()}

    net.load_state_dict(start["net"])
    net.zero_grad(set_to_none=True)
    mixer.generator.set_state(start["mix"])
    task.quarter.set_state(start["quarter"])
    forwards = []
    task.model.register_forward_hook(lambda *a: forwards.append(1))
    loss = task.loss(x, y, "s2m2")
    assert forwards == [1]
    assert torch.allclose(loss, expected, rtol=1e-6, atol=1e-7)
    loss.backward()   # the engine's one backward of the step's loss
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    for name, g in expected_grads.items():
        assert torch.allclose(grads[name], g, rtol=1e-5, atol=1e-7), name
