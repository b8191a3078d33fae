"""Deep metric learning: rho on constructed spectra, the zero-shot splits share no class, the mixed loss is its
formula, rho-regularisation's switch (p_switch = 0: the plain triplets), Recall@k against brute force, config
errors, the smoke run."""
import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from mixsuite.analysis import rho_spectrum
from mixsuite.config import build_config
from mixsuite.data import ClassSplit
from mixsuite.errors import ConfigError
from mixsuite.mixing import build_mixer
from mixsuite.models import Conv4

from conftest import ROOT, smoke_record

pytest.importorskip("pytorch_metric_learning")
from mixsuite.plugins.metric import data
from mixsuite.plugins.metric.losses import RhoSwitch, build_criterion
from mixsuite.plugins.metric.model import Embedder
from mixsuite.plugins.metric.retrieval import retrieval_metrics
from mixsuite.plugins.metric.task import MetricConfig


def rows_along_axes(counts):
    """Unit rows: counts[i] copies of the i-th basis vector, so the singular values are sqrt(counts)."""
    return torch.cat([torch.eye(len(counts))[i].repeat(c, 1) for i, c in enumerate(counts)])


def test_rho_is_zero_for_a_uniform_spectrum_and_large_for_one_direction():
    assert rho_spectrum(rows_along_axes([5] * 16)) == pytest.approx(0.0, abs=1e-12)
    assert rho_spectrum(7.0 * rows_along_axes([5] * 16)) == pytest.approx(0.0, abs=1e-12)   # rows are normalised
    counts = [10000, 10000] + [1] * 14        # after the largest (dropped): one direction holds most of the rest
    s = np.sqrt(np.array(counts[1:], dtype=float))
    expected = entropy(np.full(len(s), 1 / len(s)), s / s.sum())          # KL(uniform || s / sum s), as Roth et al.
    assert rho_spectrum(rows_along_axes(counts)) == pytest.approx(expected, rel=1e-10)
    assert expected > 1.0
    flatter = rho_spectrum(rows_along_axes([10000, 4] + [1] * 14))
    assert 0 < flatter < expected             # a less dominant second direction: smaller rho
    collapsed = rho_spectrum(rows_along_axes([5, 5]) @ torch.eye(2, 16))   # two directions in 16 dimensions
    assert 20 < collapsed < math.inf


def test_split_at_class_and_folder_datasets_share_no_class(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path / "cache"))
    for c in range(10):                        # every image's pixels hold 20 * its class index
        d = tmp_path / "birds" / f"{c:03d}.class"
        d.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((6, 6, 3), 20 * c, np.uint8)).save(d / f"{i}.png")
    train, val, test = data.load("folder", tmp_path, 4, val_classes=2, data_folder=str(tmp_path / "birds"))
    origin = lambda split: set((split.images[:, 0, 0, 0] // 20).tolist())
    assert origin(train) == {0, 1, 2} and origin(val) == {3, 4} and origin(test) == {5, 6, 7, 8, 9}
    assert (train.n_classes, val.n_classes, test.n_classes) == (3, 2, 5)
    assert torch.equal(val.labels, torch.tensor([0] * 3 + [1] * 3))         # relabelled from 0
    with pytest.raises(ConfigError, match="val_classes"):
        data.load("folder", tmp_path, 4, val_classes=4, data_folder=str(tmp_path / "birds"))


def test_omniglot_zero_shot_split(shared_data):
    train, val, test = data.load("omniglot", shared_data, 28, val_classes=64)
    assert (train.n_classes, val.n_classes, test.n_classes) == (900, 64, 659)    # background 964 = 900 + 64
    assert (len(train.labels), len(val.labels), len(test.labels)) == (18000, 1280, 13180)
    # no test image (an evaluation-alphabet drawing) is among the training or validation images
    seen = {hash(x.numpy().tobytes()) for x in torch.cat([train.images, val.images])}
    assert not any(hash(x.numpy().tobytes()) in seen for x in test.images[::7])


def test_class_balanced_batches_give_every_sample_a_positive():
    labels = torch.arange(10).repeat_interleave(5)
    g = torch.Generator().manual_seed(0)
    batches = data.class_balanced_batches(labels, 8, 2, g)
    assert len(batches) == 5 and all(len(b) == 8 for b in batches)       # 10 classes x 2 groups / 4 per batch
    every = torch.cat(batches)
    assert len(every.unique()) == len(every)                              # no sample twice in an epoch
    for b in batches:
        assert all((labels[b] == labels[i]).sum() >= 2 for i in b)
    with pytest.raises(ConfigError, match="multiple"):
        data.class_balanced_batches(labels, 7, 2, g)


def embeddings_and_labels(n_classes=6, per_class=4, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_classes, dim, generator=g)
    x = centres.repeat_interleave(per_class, 0) + 0.8 * torch.randn(n_classes * per_class, dim, generator=g)
    return torch.nn.functional.normalize(x, dim=1), torch.arange(n_classes).repeat_interleave(per_class)


@pytest.mark.parametrize("loss", ["normsoftmax", "proxyanchor", "triplet", "margin", "multisimilarity"])
def test_mixed_loss_is_lam_L_ya_plus_one_minus_lam_L_yb(loss):
    torch.manual_seed(0)
    net = Embedder(Conv4(1, 8), 16)
    x, y = torch.randn(12, 1, 28, 28), torch.arange(6).repeat_interleave(2)
    crit = build_criterion(loss, 6, 16, generator=torch.Generator().manual_seed(3))
    mixer = build_mixer("manifold", net.backbone, alpha=2.0, layers=["block2"],
                        generator=torch.Generator().manual_seed(1))
    with mixer.step(len(x)) as plan:
        emb = net(x)
    state = crit.generator.get_state()
    mixed = plan.mix_loss(crit, emb, y)
    crit.generator.set_state(state)                                        # the same mining draws, in the same order
    lam = float(plan.lam)
    expected = lam * crit(emb, y) + (1 - lam) * crit(emb, y[plan.perm])
    assert 0 < lam < 1 and not torch.equal(plan.perm, torch.arange(12))
    torch.testing.assert_close(mixed, expected)
    assert mixed.requires_grad


def test_p_switch_zero_gives_the_plain_triplets_and_one_switches_every_triplet():
    from pytorch_metric_learning import miners

    emb, y = embeddings_and_labels()
    for miner in (miners.TripletMarginMiner(0.2, type_of_triplets="semihard"), miners.DistanceWeightedMiner(0.5)):
        torch.manual_seed(5)
        plain = miner(emb, y)
        torch.manual_seed(5)
        kept = RhoSwitch(miner, 0.0, torch.Generator().manual_seed(0))(emb, y)
        assert len(plain[0]) > 0 and all(torch.equal(p, k) for p, k in zip(plain, kept))
    torch.manual_seed(5)
    a, p, n = RhoSwitch(miners.DistanceWeightedMiner(0.5), 1.0, torch.Generator().manual_seed(0))(emb, y)
    assert torch.equal(p, a) and (y[n] == y[a]).all() and (n != a).all()   # (a, a, another of a's class)
    torch.manual_seed(5)
    a, p, n = RhoSwitch(miners.DistanceWeightedMiner(0.5), 0.5, torch.Generator().manual_seed(0))(emb, y)
    switched = p == a
    assert 0 < switched.sum() < len(a) and (y[n[~switched]] != y[a[~switched]]).all()
    # the criterion built without p_switch equals the loss on the miner's own triplets
    crit = build_criterion("triplet", 6, 8, p_switch=0.0)
    from pytorch_metric_learning import losses
    torch.testing.assert_close(crit(emb, y), losses.TripletMarginLoss(0.2)(emb, y, miners.TripletMarginMiner(
        0.2, type_of_triplets="semihard")(emb, y)))


def test_recall_at_k_and_map_at_r_against_brute_force():
    emb, y = embeddings_and_labels(n_classes=8, per_class=5, dim=6, seed=2)
    m = retrieval_metrics(emb, y, nmi=True)
    d = torch.cdist(emb, emb)
    d.fill_diagonal_(math.inf)
    order = d.argsort(1)
    for k in (1, 2, 4, 8):
        assert m[f"recall_at_{k}"] == pytest.approx((y[order[:, :k]] == y[:, None]).any(1).float().mean().item())
    r = 4                                     # MAP@R: R = 4 other samples of each class
    hits = (y[order[:, :r]] == y[:, None]).float()
    precision = hits.cumsum(1) / torch.arange(1, r + 1)
    assert m["map_at_r"] == pytest.approx(((precision * hits).sum(1) / r).mean().item(), rel=1e-5)
    assert 0 < m["nmi"] <= 1


def test_config_errors_name_the_key():
    """Checked when the config is built (before any data or folder), each naming its field."""
    with pytest.raises(ConfigError, match="loss: method=rho switches triplets"):
        build_config(MetricConfig, overrides=["method=rho", "loss=normsoftmax"])
    with pytest.raises(ConfigError, match="p_switch: 1.5 is out of range"):
        build_config(MetricConfig, overrides=["p_switch=1.5"])
    with pytest.raises(ConfigError, match="method: 'mixup' is not one of"):
        build_config(MetricConfig, overrides=["method=mixup"])
    with pytest.raises(ConfigError, match="backbone: timm has no model"):
        build_config(MetricConfig, overrides=["backbone=timm:resnet51"])
    with pytest.raises(ConfigError, match="batch_size: 111 must be a multiple"):
        build_config(MetricConfig, overrides=["batch_size=111"])


def test_smoke_config(tmp_path, shared_data):
    record = smoke_record("metric", tmp_path)
    m = record["metrics"]
    assert record["method"] == "manifold-rho" and record["primary_metric"] == "test_recall_at_1"
    assert 0.1 < m["test_recall_at_1"] <= m["test_recall_at_2"] <= m["test_recall_at_4"] <= m["test_recall_at_8"] <= 1
    assert 0 < m["test_map_at_r"] < 1 and 0 < m["test_nmi"] < 1 and 0 < m["test_rho"] < 5 and 0 < m["train_rho"] < 5
    assert 1 < m["test_sv_overall_erank"] <= 64
    assert "best_val_recall_at_1" in m and m["best_epoch"] in (1, 2)


def test_test_every_and_an_early_stop_give_the_selected_and_the_last_weights_test_metrics(shared_data, tmp_path,
                                                                                          monkeypatch):
    """A validation score that falls after epoch 1 stops a patience-1 run at epoch 2. With test_every=3 neither
    epoch is tested during training, so the end must test the kept epoch-1 weights (best_test_*) and the last
    weights (test_*) and give what a run that tests every epoch records (evaluation draws nothing, so both
    runs train alike)."""
    from mixsuite.plugins.metric.task import MetricTask
    from mixsuite.runner import run

    evaluate = MetricTask.evaluate
    monkeypatch.setattr(MetricTask, "evaluate", lambda self, epoch: {**evaluate(self, epoch),
                                                                     "val_recall_at_1": 1.0 / epoch})

    def record(test_every):
        cfg = build_config(MetricConfig, [ROOT / "configs/metric/smoke.yaml"],
                           ["epochs=4", "patience=1", f"test_every={test_every}", f"data_root={shared_data}",
                            "progress=false"])
        out = tmp_path / str(test_every)
        rec = run(MetricTask, cfg, results_dir=out / "res", runs_dir=out / "runs", log=lambda m: None)
        epochs = [json.loads(ln) for ln in next((out / "runs").rglob("metrics.jsonl")).read_text().splitlines()]
        return rec["metrics"], epochs

    (every, _), (sparse, epochs) = record(1), record(3)
    assert (sparse["best_epoch"], sparse["last_epoch"]) == (every["best_epoch"], every["last_epoch"]) == (1, 2)
    assert [("test_recall_at_1" in e) for e in epochs] == [False, False]
    for k in ("best_test_recall_at_1", "best_test_map_at_r", "best_test_rho", "best_test_sv_class_mean_erank",
              "test_recall_at_1", "test_rho", "test_nmi", "train_rho", "best_test_nmi", "best_train_rho"):
        assert sparse[k] == pytest.approx(every[k], abs=1e-6), k
    assert sparse["best_test_recall_at_1"] != pytest.approx(sparse["test_recall_at_1"], abs=1e-9)


def test_select_on_picks_the_epoch_by_that_validation_metric(shared_data, tmp_path, monkeypatch):
    """Validation MAP@R made to fall after epoch 1 while Recall@1 rises: select_on=map_at_r keeps epoch 1, the
    default (recall_at_1) epoch 2."""
    from mixsuite.plugins.metric.task import MetricTask
    from mixsuite.runner import run

    evaluate = MetricTask.evaluate
    monkeypatch.setattr(MetricTask, "evaluate", lambda self, epoch: {**evaluate(self, epoch), "val_map_at_r": 1 / epoch,
                                                                     "val_recall_at_1": epoch / 10})

    def best(*over):
        cfg = build_config(MetricConfig, [ROOT / "configs/metric/smoke.yaml"],
                           [*over, f"data_root={shared_data}", "progress=false"])
        out = tmp_path / "-".join(over or ["default"])
        return run(MetricTask, cfg, results_dir=out / "res", runs_dir=out / "runs", log=lambda m: None)["metrics"]

    on_map = best("select_on=map_at_r")
    assert on_map["best_epoch"] == 1 and on_map["best_val_map_at_r"] == 1.0 and on_map["best_val_recall_at_1"] == 0.1
    assert best()["best_epoch"] == 2
    with pytest.raises(ConfigError, match="select_on"):
        build_config(MetricConfig, overrides=["select_on=nmi"])


def test_rho_recall_figure_and_correlation(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("metric_rho_recall", ROOT / "bench" / "metric_rho_recall.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    folder = tmp_path / "runs" / "metric"
    folder.mkdir(parents=True)
    for i, (method, rho, r1) in enumerate([("erm", 0.5, 0.60), ("manifold", 0.3, 0.70), ("rho", 0.2, 0.75),
                                           ("erm", 0.6, 0.55)]):
        record = {"run_id": f"r{i}", "status": "finished", "dataset": "omniglot", "method": method,
                  "config": {"loss": "margin"}, "metrics": {"test_rho": rho, "test_recall_at_1": r1}}
        (folder / f"r{i}.json").write_text(json.dumps(record))
    (folder / "broken.json").write_text(json.dumps({"run_id": "x", "status": "diverged"}))
    assert bench.main([str(tmp_path), "--out", str(tmp_path / "fig.png")]) == 0
    assert (tmp_path / "fig.png").stat().st_size > 1000
    c = bench.correlations(bench.load_runs([tmp_path]), "test_rho", "test_recall_at_1")
    assert c["margin"]["n"] == 4 and c["margin"]["spearman"] == pytest.approx(-1.0)   # lower rho, higher Recall@1


@pytest.mark.parametrize("name,p_switch", [("cub", 0.3), ("cars196", 0.35)])
def test_paper_configs_carry_roth_et_al_protocol(name, p_switch):
    cfg = build_config(MetricConfig, [ROOT / "configs" / "metric" / f"paper-{name}.yaml"])
    assert (cfg.dataset, cfg.backbone, cfg.pretrained, cfg.freeze_bn, cfg.embed_dim) == (
        name, "timm:resnet50", True, True, 128)
    assert (cfg.batch_size, cfg.samples_per_class, cfg.lr, cfg.weight_decay, cfg.epochs) == (112, 2, 1e-5, 4e-4, 150)
    assert (cfg.image_size, cfg.val_classes, cfg.p_switch) == (224, 0, p_switch)


def test_timm_backbone_embeds_one_channel_images_and_mixes_by_name():
    from mixsuite.models import build_backbone

    torch.manual_seed(0)
    net = Embedder(build_backbone("timm:resnet18", 1), 32).eval()
    emb = net(torch.randn(3, 1, 28, 28))
    assert emb.shape == (3, 32) and torch.allclose(emb.norm(dim=1), torch.ones(3))
    mixer = build_mixer("manifold", net.backbone, alpha=2.0, layers=["layer2"], generator=torch.Generator())
    with torch.no_grad(), mixer.step(3) as plan:
        mixed = net(torch.randn(3, 1, 28, 28))
    assert plan.layer == "layer2" and mixed.shape == (3, 32)
