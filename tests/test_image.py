"""The image task: models' mixing points and the mixing formula, the cifar10-jpeg loader on the real data,
batch augmentation, cutout, the paper configs' hyperparameters, every method end to end, the smoke config."""
import io
import itertools
import json

import numpy as np
import pytest
import torch

from mixsuite.config import build_config
from mixsuite.errors import DataNotFound
from mixsuite.mixing import MIXERS, build_mixer
from mixsuite.runner import run
from mixsuite.task import resolve

from conftest import ROOT

from mixsuite.plugins.image import augment, models
from mixsuite.plugins.image import data as data_mod
from mixsuite.plugins.image import task as task_mod

TASK = resolve(str(ROOT / "tasks" / "image")).load()

MIX_POINTS = {"preactresnet18": ["input", "layer1", "layer2", "layer3"],
              "preactresnet34": ["input", "layer1", "layer2", "layer3"],
              "wrn28_2": ["input", "layer1", "layer2", "layer3"],
              "timm:resnet18": ["input", "layer1", "layer2", "layer3"]}


def _replace_output(module, value):
    return module.register_forward_hook(lambda m, a, out: value)


@pytest.mark.parametrize("name", list(MIX_POINTS))
def test_mixing_at_each_point_gives_the_formula(name):
    torch.manual_seed(0)
    net = models.build_model(name, 10, width=0.125).eval()     # eval: BN statistics do not couple the rows
    x = torch.randn(6, 3, 32, 32)
    modules = dict(net.named_modules())
    for k in MIX_POINTS[name]:
        mixer = build_mixer("manifold", net, alpha=2.0, layers=[k], generator=torch.Generator().manual_seed(1))
        with torch.no_grad(), mixer.step(len(x)) as plan:
            mixed = net(x)
        lam, perm = float(plan.lam), plan.perm
        assert plan.layer == k and 0 < lam < 1 and not torch.equal(perm, torch.arange(len(x)))
        with torch.no_grad():
            if k == "input":
                expected = net(lam * x + (1 - lam) * x[perm])
            else:
                seen = {}
                h = modules[k].register_forward_hook(lambda m, a, out: seen.setdefault("h", out))
                clean = net(x)
                h.remove()
                handle = _replace_output(modules[k], lam * seen["h"] + (1 - lam) * seen["h"][perm])
                expected = net(x)
                handle.remove()
                assert not torch.allclose(clean, mixed, atol=1e-4)
        torch.testing.assert_close(mixed, expected, rtol=1e-4, atol=1e-5)


def test_width_multiplier_and_cifar_stem():
    narrow = models.build_model("preactresnet18", 10, width=0.25)
    assert narrow.conv1.out_channels == 16 and narrow.num_features == 128
    assert models.build_model("wrn28_10", 10, width=0.1).layer3[0].conv1.out_channels == 64
    full = sum(p.numel() for p in models.build_model("preactresnet18", 10).parameters())
    assert 11.0e6 < full < 11.3e6                     # PreActResNet18 has ~11.17M parameters
    tm = models.build_model("timm:resnet18", 10)
    assert tm.conv1.kernel_size == (3, 3) and tm.conv1.stride == (1, 1) and isinstance(tm.maxpool, torch.nn.Identity)
    assert tm(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert models.penultimate(tm, torch.randn(2, 3, 32, 32)).shape == (2, 512)


def test_cifar10_jpeg_counts_and_pixels_on_real_data(shared_data):
    full = data_mod.load_dataset("cifar10-jpeg", shared_data)
    assert full.train_x.shape == (50000, 3, 32, 32) and full.train_x.dtype == torch.uint8
    assert full.test_x.shape == (10000, 3, 32, 32)
    assert torch.bincount(full.train_y).tolist() == [5000] * 10
    assert torch.bincount(full.test_y).tolist() == [1000] * 10
    assert abs(full.train_x.float().mean().item() - 120.7) < 0.1          # the README's mean pixel value
    from PIL import Image
    d = np.load(shared_data / "cifar10_jpeg" / "cifar10_jpeg.npz")
    i = 12345
    img = np.asarray(Image.open(io.BytesIO(d["train_jpeg"][d["train_offsets"][i]:d["train_offsets"][i + 1]].tobytes())))
    assert torch.equal(full.train_x[i], torch.from_numpy(img.copy()).permute(2, 0, 1))

    sub = data_mod.load_dataset("cifar10-jpeg", shared_data, train_per_class=100, test_per_class=50,
                                val_per_class=20)
    assert torch.bincount(sub.train_y).tolist() == [100] * 10
    assert torch.bincount(sub.test_y).tolist() == [50] * 10
    assert torch.bincount(sub.val_y).tolist() == [20] * 10
    flat = lambda t: {bytes(r) for r in t.flatten(1).numpy()}   # noqa: E731
    assert not flat(sub.train_x) & flat(sub.val_x)               # held-out images are not trained on
    with pytest.raises(Exception, match="exceed"):
        data_mod.load_dataset("cifar10-jpeg", shared_data, train_per_class=4990, val_per_class=20)


def test_missing_dataset_says_where_and_how(tmp_path):
    with pytest.raises(DataNotFound, match="download=true") as e:
        data_mod.load_dataset("cifar10", tmp_path)
    assert str(tmp_path) in str(e.value)
    with pytest.raises(DataNotFound, match="cifar10_jpeg.npz"):
        data_mod.load_dataset("cifar10-jpeg", tmp_path)


def test_random_crop_is_a_shift_of_the_zero_padded_image():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (64, 3, 8, 8), dtype=torch.uint8)     # no zeros, so padding is visible
    out = augment.random_crop(x, 2, g)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2,) * 4)
    shifts = []
    for i in range(len(x)):
        match = [(dy, dx) for dy, dx in itertools.product(range(5), range(5))
                 if torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8])]
        assert len(match) == 1
        shifts.append(match[0])
    assert len(set(shifts)) > 12                                     # offsets spread over the 5 x 5 choices
    assert torch.equal(augment.random_crop(x, 0, g), x)


def test_random_flip_flips_about_half():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 3, 4, 4)
    out = augment.random_flip(x, g)
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert bool((flipped ^ kept).all()) and 160 < int(flipped.sum()) < 240


def test_cutout_zeroes_one_clipped_16px_square():
    g = torch.Generator().manual_seed(0)
    out = augment.cutout(torch.ones(300, 3, 32, 32), 16, g)
    full = 0
    for img in out:
        hole = img[0] == 0
        assert torch.equal(img == 0, hole.expand(3, -1, -1))         # the same hole in every channel
        ys, xs = hole.nonzero(as_tuple=True)
        h, w = int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)
        assert hole.sum() == h * w and h <= 16 and w <= 16           # a rectangle, at most 16 x 16
        inside = 0 < ys.min() and ys.max() < 31 and 0 < xs.min() and xs.max() < 31
        if inside:
            assert (h, w) == (16, 16)
            full += 1
    assert full > 50


PAPER = {"preactresnet18": (1200, [400, 800]), "preactresnet34": (1200, [400, 800]), "wrn28_10": (400, [200, 300])}


@pytest.mark.parametrize("arch,dataset,method", list(itertools.product(PAPER, ["cifar10", "cifar100", "svhn"],
                                                                       ["erm", "input", "manifold"])))
def test_paper_configs_carry_the_papers_hyperparameters(arch, dataset, method):
    files = [ROOT / f"configs/image/paper-{arch}-{dataset}.yaml", ROOT / f"configs/image/paper-{method}.yaml"]
    cfg = build_config(TASK.Config, files)
    epochs, milestones = PAPER[arch]
    assert (cfg.model, cfg.dataset, cfg.method, cfg.width) == (arch, dataset, method, 1.0)
    assert (cfg.epochs, cfg.lr_milestones, cfg.lr_gamma, cfg.schedule) == (epochs, milestones, 0.1, "step")
    assert (cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay, cfg.batch_size) == (0.1, 0.9, True, 1e-4, 100)
    assert (cfg.crop_padding, cfg.loss, cfg.train_per_class, cfg.test_per_class) == (2, "bce", 0, 0)
    if method != "erm":
        assert cfg.alpha == {"input": 1.0, "manifold": 2.0}[method]
    if method == "manifold":
        assert cfg.mix_layers == ["input", "layer1", "layer2"]


@pytest.mark.parametrize("method", ["erm", "input", "manifold", "cutmix", "dropout", "cutout", "patchup",
                                    "patchup-hard", "nfm", "alignmix", "fmix", "resizemix"])
def test_every_method_trains_and_records_the_metrics(method, shared_data, tmp_path):
    cfg = build_config(TASK.Config, [ROOT / "configs/image/smoke.yaml"],
                       [f"method={method}", "epochs=1", "train_per_class=10", "test_per_class=10",
                        "val_per_class=5", f"data_root={shared_data}", "plots=false", "progress=false",
                        "loss=bce" if method == "manifold" else "loss=ce"])
    rec = run(TASK, cfg, results_dir=tmp_path / "res", runs_dir=tmp_path / "runs", log=lambda m: None)
    m = rec["metrics"]
    for key in ("test_err", "test_nll", "test_ece", "best_test_err", "best_test_nll", "best_test_ece", "val_err",
                "last_hidden_sv_overall_erank", "train_images_per_s"):
        assert key in m and np.isfinite(m[key]), key
    assert 0 <= m["test_err"] <= 100 and m["best_epoch"] == 1
    used = {"erm": None, "dropout": None, "input": ["input"], "cutmix": ["input"],
            "manifold": ["input", "layer1", "layer2"], "patchup": ["input", "conv1", "layer1"], "alignmix": ["input", "layer4"], "fmix": ["input"]}
    if method in used:   # the record names the S the run drew from, a descendant's paper set included
        assert rec["mixing"].get("layers") == used[method] and rec["mixing"]["backend"] == task_mod.METHODS[method].backend


def test_descendants_take_their_papers_layers_and_alpha_unless_told_otherwise():
    expected = {"patchup": (["input", "conv1", "layer1"], 2.0), "nfm": (["input", "layer1", "layer2", "layer3"], 1.0),
                "alignmix": (["input", "layer4"], 2.0), "fmix": (None, 1.0), "resizemix": (None, 1.0)}
    net = models.build_model("preactresnet18", 10, width=0.125)
    for method, (layers, alpha) in expected.items():
        cfg = build_config(TASK.Config, [], [f"method={method}"])
        used = None if MIXERS.get(cfg.mixing_backend()).default_layers else cfg.mixing_layers()
        assert used == layers and cfg.mixing_alpha() == task_mod.METHODS[method].alpha == alpha
        build_mixer(task_mod.METHODS[method].backend, net, layers=layers)        # every layer is a module here
    cfg = build_config(TASK.Config, [], ["method=nfm", "mix_layers=[layer2]"])
    assert cfg.mixing_layers() == ["layer2"]
    hard = build_mixer("patchup", net, layers=["conv1"], **task_mod.METHODS["patchup-hard"].options)
    assert (hard.mode, hard.gamma, hard.prob, hard.block_size) == ("hard", 0.5, 0.7, 7)    # the README's CIFAR run


def test_smoke_config_runs_via_the_cli(cli, shared_data, tmp_path):
    out = cli("run", "tasks/image", "-c", "configs/image/smoke.yaml", "--results-dir", tmp_path / "res",
              "--runs-dir", tmp_path / "runs", env={"MIXSUITE_DATA": str(shared_data), "OMP_WAIT_POLICY": "PASSIVE"})
    assert out.returncode == 0, out.stderr      # its speed is bench/engine_overhead.py's to measure, not a test's
    rec = json.loads(next((tmp_path / "res" / "runs" / "image").glob("*.json")).read_text())
    assert rec["metrics"]["best_epoch"] in (1, 2)
    for key in ("test_err", "test_nll", "test_ece", "best_test_err", "train_images_per_s"):
        assert key in rec["metrics"]
    assert rec["wall_time_s"] > 0


def test_tiny_imagenet_paper_config_and_stride2_stem():
    cfg = build_config(TASK.Config, [ROOT / "configs/image/paper-preactresnet18-tiny-imagenet.yaml",
                                     ROOT / "configs/image/paper-manifold.yaml"], ["alpha=0.2"])
    assert (cfg.epochs, cfg.lr_milestones, cfg.crop_padding, cfg.stem_stride, cfg.alpha) == (2000, [1000, 1500], 4, 2, 0.2)
    net = models.build_model("preactresnet18", 200, width=0.125, stem_stride=2)
    assert net.conv1(torch.zeros(1, 3, 64, 64)).shape[-2:] == (32, 32)
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 200)


def test_test_every_takes_the_selected_epochs_test_metrics_from_its_kept_weights(shared_data, tmp_path):
    """With test_every > 1 the test set is skipped on most epochs; best_test_* must still be the test metrics of
    the epoch chosen on validation, as a run that tests every epoch reports them (evaluation draws nothing, so
    both runs train alike)."""
    def record(extra):
        cfg = build_config(TASK.Config, [ROOT / "configs/image/smoke.yaml"],
                           ["method=erm", "epochs=4", "train_per_class=10", "test_per_class=10", "val_per_class=5",
                            "train_eval_points=20", f"data_root={shared_data}", "plots=false", "progress=false",
                            "schedule=cosine", *extra])
        return run(TASK, cfg, results_dir=tmp_path / "res", runs_dir=tmp_path / "runs", log=lambda m: None)

    every, sparse = record(["test_every=1"])["metrics"], record(["test_every=3"])["metrics"]
    assert sparse["best_epoch"] == every["best_epoch"]
    for k in ("best_test_err", "best_test_nll", "best_test_ece", "test_err", "test_nll", "train_acc", "val_nll"):
        assert sparse[k] == pytest.approx(every[k], abs=1e-6), k
    runs = sorted((tmp_path / "runs" / "image").iterdir(), key=lambda p: p.stat().st_mtime)
    epochs = [json.loads(ln) for ln in (runs[-1] / "metrics.jsonl").read_text().splitlines()]
    assert [("test_err" in e) for e in epochs] == [False, False, True, True]      # epoch 3, and the last
    assert all("train_nll" in e and "val_err" in e for e in epochs)
    assert sparse["oracle_test_err"] == pytest.approx(min(e["test_err"] for e in epochs if "test_err" in e))
    assert every["oracle_test_nll"] <= every["test_nll"] + 1e-9


def test_balanced_head_takes_the_same_number_of_every_class():
    labels = torch.tensor([0] * 5 + [1] * 5 + [2] * 5)          # stored sorted by class, as cifar10-jpeg is
    balanced_head = task_mod.balanced_head
    assert balanced_head(labels, 6).tolist() == [0, 1, 5, 6, 10, 11]
    assert balanced_head(labels, 0) is None


def test_layer_spectra_bench_measures_a_finished_run_and_matches_its_record(shared_data, tmp_path):
    """bench/layer_spectra.py rebuilds a run from its folder: at the last weights its pooled-feature spectra
    must give the run record's effective rank, and each layer's hidden state has that layer's size."""
    import subprocess
    import sys

    cfg = build_config(TASK.Config, [ROOT / "configs/image/smoke.yaml"],
                       ["epochs=2", "val_per_class=5", "test_every=2", f"data_root={shared_data}", "plots=false",
                        "progress=false"])
    rec = run(TASK, cfg, results_dir=tmp_path / "res", runs_dir=tmp_path / "runs", log=lambda m: None)
    run_dir = tmp_path / "runs" / "image" / rec["run_id"]
    out = subprocess.run([sys.executable, ROOT / "bench" / "layer_spectra.py", run_dir, "--weights", "last",
                          "--layers", "layer2", "features", "--results", tmp_path / "res"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    layers = result["runs"][0]["layers"]
    assert result["runs"][0]["record_check"] is True
    assert layers["features"]["class_mean_erank"] == pytest.approx(
        rec["metrics"]["last_hidden_sv_class_mean_erank"], rel=1e-6)
    net, seen = models.build_model("preactresnet18", 10, width=cfg.width), {}
    net.layer2.register_forward_hook(lambda m, args, out: seen.setdefault("layer2", out))
    net(torch.zeros(1, 3, 32, 32))
    assert layers["layer2"]["dims"] == seen["layer2"][0].numel()
    best = subprocess.run([sys.executable, ROOT / "bench" / "layer_spectra.py", run_dir, "--split", "train",
                           "--layers", "features"], capture_output=True, text=True, cwd=tmp_path)
    assert best.returncode == 0, best.stderr        # the weights kept at the epoch chosen on validation
    train = json.loads(best.stdout.strip().splitlines()[-1])
    assert train["split"] == "train" and "record_check" not in train["runs"][0]   # the record measured test images
    assert train["runs"][0]["layers"]["features"]["class_mean_erank"] != layers["features"]["class_mean_erank"]
