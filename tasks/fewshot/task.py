"""Few-shot classification after S2M2 (Mangla et al., WACV 2020): train a backbone on the base classes, then
evaluate it on N-way K-shot episodes of novel classes with a classifier fitted on each episode's support set.

Methods: baseline (linear head, CE), baselinepp (cosine head), rotation (0.5 CE class + 0.5 CE rotation over the
4 rotations), manifold (manifold mixup alone), s2m2 (`rotation_epochs` of rotation training, then manifold mixup
with k ~ U{input, block1, block2, block3} plus the rotation loss on a quarter of the batch, one optimizer step
on both gradients).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, ClassVar

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from mixsuite import checkpoint
from mixsuite.analysis import save_spectra, singular_values, spectrum_summary
from mixsuite.compiling import CompileConfig, compiled
from mixsuite.config import RunConfig, added_field, at_least, each, non_negative, one_of, positive, probability
from mixsuite.errors import UserError
from mixsuite.images import normalize
from mixsuite.mixing import Method, MixingConfig, mixer_from_config
from mixsuite.schedules import epoch_scheduler
from mixsuite.splits import require_examples
from mixsuite.task import KeepsBestWeights, Task

from . import data, lake
from .backbones import BACKBONES, build_backbone
from .episodes import CLASSIFIERS, episode_accuracies, mean_ci95, sample_episodes
from .heads import FewShotNet, TrainingForward, rotate_batch

# baseline: a linear head; baselinepp, rotation: a cosine head, no mixing; manifold, s2m2: manifold mixup
METHODS = {"baseline": Method("erm"), "baselinepp": Method("erm"), "rotation": Method("erm"),
           "manifold": Method("manifold"), "s2m2": Method("manifold")}
SPECTRUM_CLASSES = 100   # novel classes whose feature spectra a run records


@dataclass
class FewShotConfig(CompileConfig, MixingConfig, RunConfig):
    dataset: Annotated[str, one_of(data.OMNIGLOT, data.FOLDER_DATASETS, ignore_case=True)] = "omniglot"
    #                          omniglot | omniglot-vinyals | miniimagenet | tieredimagenet | cub | cifar-fs
    method: Annotated[str, one_of(METHODS)] = "s2m2"
    backbone: Annotated[str, one_of(BACKBONES)] = "conv4"   # conv4 | resnet12 | wrn28-10
    image_size: Annotated[int, positive] = 28
    epochs: int = 6                      # all epochs; for s2m2 the first rotation_epochs are the rotation stage
    rotation_epochs: Annotated[int, non_negative] = 3   # s2m2 only: the rotation stage that comes first
    init_from: str = ""                  # start from a previous run's checkpoint.pt (e.g. its rotation stage)
    batch_size: Annotated[int, positive] = 128
    lr: Annotated[float, positive] = 1e-3   # Adam, as the paper's code
    alpha: float = 2.0
    mix_layers: list[str] = field(default_factory=lambda: ["input", "block1", "block2", "block3"])
    head_scale: Annotated[float, positive] = 10.0  # cosine head: 2 when <= 200 classes, else 10 in the paper's code
    dropout: Annotated[float, probability] = 0.5   # WRN only
    base_classes: Annotated[int, non_negative] = 0  # 0 = all; fewer for quick runs
    val_classes: Annotated[int, non_negative] = 64  # held out of the base classes for validation episodes (Omniglot)
    n_way: Annotated[int, at_least(2)] = 5
    shots: Annotated[list[int], each(at_least(1))] = field(default_factory=lambda: [1, 5])
    n_query: Annotated[int, at_least(1, allow=(-1,))] = 15  # -1: every remaining image of the class (the paper's)
    val_episodes: Annotated[int, at_least(1)] = 200
    test_episodes: Annotated[int, at_least(1)] = 600
    episode_classifier: Annotated[str, one_of(CLASSIFIERS)] = "logistic"
    #                                    logistic | cosine | prototype (nearest class mean, nothing fitted)
    classifier_steps: Annotated[int, at_least(1)] = 300
    classifier_lr: Annotated[float, positive] = 0.1
    eval_every: int = 2
    # Added after the first records (each enters the config hash only when set):
    ways: Annotated[tuple[int, ...], each(at_least(2))] = added_field(())  # test episodes' N-way (default: n_way)
    test_weights: Annotated[str, one_of("last", "best")] = added_field("last")  # best: the best val epoch's weights
    lake_runs: bool = added_field(False)       # also score Lake's 20 one-shot runs (dataset=omniglot only)
    schedule: Annotated[str, one_of("constant", "cosine")] = added_field("constant")
    #                                    constant (the paper's Adam) | cosine (lr to 0 over all the epochs)

    method_table: ClassVar[dict[str, Method]] = METHODS

    def check(self) -> list[str]:
        found = super().check()
        start = Path(self.init_from)
        if self.init_from and not (start.is_file() or (start / "checkpoint.pt").is_file()):
            found.append(f"init_from: no checkpoint at {self.init_from!r} (a run folder or its checkpoint.pt)")
        dataset = self.dataset.lower()
        if self.lake_runs and dataset != "omniglot":
            found.append(f"lake_runs: Lake's runs are drawn from the evaluation alphabets, which are not novel to a "
                         f"model trained on dataset={self.dataset}: use dataset=omniglot (the background set only)")
        if self.test_weights == "best" and dataset == "omniglot" and not self.val_classes:
            found.append("test_weights: best chooses on the validation classes, and val_classes=0 holds none out: "
                         "set val_classes (e.g. 64) or test_weights=last")
        if dataset == "omniglot-vinyals" and self.base_classes % 4:
            found.append(f"base_classes: {self.base_classes} would split a character's 4 rotation classes "
                         "(omniglot-vinyals): use a multiple of 4")
        return found


class FewShotTask(KeepsBestWeights, Task):
    name = "fewshot"
    Config = FewShotConfig
    primary_metric = "test_5way5shot_acc"
    baseline_method = "baselinepp"
    select_metric = "val_acc"
    state_attrs = ("net", "optimizer", "scheduler")

    def setup(self):
        cfg, eng = self.cfg, self.engine
        self.base, self.val, self.novel = data.load(cfg.dataset, eng.data_root, cfg.image_size, cfg.val_classes)
        if cfg.base_classes:
            self.base = self.base.subset_classes(cfg.base_classes)
        self.lake = lake.load_runs(lake.find_zip(eng.data_root), cfg.image_size) if cfg.lake_runs else None
        self._require_data()
        self.mean = self.base.images.float().mean().item() / 255
        self.std = self.base.images.float().std().item() / 255
        self.train_loader = eng.loader(TensorDataset(self.base.images, self.base.labels), cfg.batch_size,
                                       drop_last=True)
        self.build(self.base.images.shape[1], self.base.n_classes)
        if cfg.init_from:
            self._init_from(Path(cfg.init_from))

    def _require_data(self) -> None:
        """Before training: a full batch of base images, and enough classes and images for every episode."""
        cfg = self.cfg
        base_src, val_src, novel_src = data.sources(cfg.dataset, self.engine.data_root)
        require_examples("train (base)", len(self.base.labels), base_src, f"{len(self.base.labels)} images",
                         need=cfg.batch_size, unit="images", why="for one batch (a partial batch is dropped)")
        query = max(cfg.n_query, 1)
        if len(self.val.labels) or not (cfg.dataset.lower() == "omniglot" and cfg.val_classes == 0):
            data.require_episodes("val", self.val.labels, cfg.n_way, 1 + query, val_src)   # val_classes=0: none
        for way in cfg.ways or (cfg.n_way,):
            data.require_episodes("test (novel)", self.novel.labels, way, max(cfg.shots) + query, novel_src)

    def build(self, channels: int, n_classes: int) -> None:
        """The network, its optimizer, the mixer and the one module a training step calls (DDP-wrapped)."""
        cfg, eng = self.cfg, self.engine
        head = "linear" if cfg.method == "baseline" else "cosine"
        self.net = FewShotNet(build_backbone(cfg.backbone, channels, cfg.dropout), n_classes, head, cfg.head_scale)
        self.mixer = mixer_from_config(cfg, self.net.backbone, eng)
        # baseline, baselinepp and manifold never use the rotation head: DDP must not wait for its gradients
        self.model = eng.prepare(TrainingForward(self.net, self.mixer),
                                 find_unused_parameters=cfg.method not in ("rotation", "s2m2"))
        self.model = compiled(cfg, self.model)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.scheduler = epoch_scheduler(self.optimizer, cfg.schedule, cfg.epochs)
        self.quarter = eng.generator("quarter")

    def _init_from(self, path: Path):
        if path.is_dir():
            path = path / "checkpoint.pt"
        if not path.is_file():
            raise UserError(f"init_from={path}: no checkpoint there")
        state = checkpoint.load(path, how="Point init_from at a good checkpoint.pt (e.g. the rotation run's)")
        state = state["task"]["net"]
        own = self.net.state_dict()
        kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape and not k.startswith("rotation")}
        self.net.load_state_dict(kept, strict=False)   # the rotation head starts fresh, as in S2M2
        self.engine.log(f"initialised {len(kept)} tensors from {path}")

    def normalize(self, x):
        return normalize(x, self.mean, self.std)

    def stage(self, epoch: int) -> str:
        """What this epoch trains: for s2m2 the rotation stage comes first."""
        if self.cfg.method == "s2m2":
            return "rotation" if epoch <= self.cfg.rotation_epochs and not self.cfg.init_from else "s2m2"
        return self.cfg.method

    def on_train_epoch_start(self, epoch):
        super().on_train_epoch_start(epoch)
        self.stage_now = self.stage(epoch)

    def training_step(self, batch):
        x, y = batch
        return {"loss": self.loss(self.normalize(x), y, self.stage_now)}

    def on_train_epoch_end(self, epoch, logs, samples, seconds):
        # the training set's images a second (a rotation step trains on 4 rotations of each, its rate is lower)
        return {**logs, "images_per_s": samples / max(seconds, 1e-9)}

    def loss(self, x, y, stage: str) -> torch.Tensor:
        """One forward through the (DDP-wrapped) model: the loss that one backward and one optimizer step follow.

        rotation: 0.5 CE(class) + 0.5 CE(rotation) over the 4 rotations of the batch; manifold: the mixed CE;
        s2m2: the mixed CE plus the rotation loss on a random quarter of the batch (the paper's code adds the two
        gradients before its one optimizer step); baseline(pp): CE.
        """
        plan = self.mixer.draw(len(x), device=x.device) if stage in ("manifold", "s2m2") else None
        rot_x = rot_y = xr = None
        if stage in ("rotation", "s2m2"):
            rot_x, rot_y = x, y
            if stage == "s2m2":
                q = torch.randperm(len(x), generator=self.quarter)[: max(1, len(x) // 4)].to(x.device)
                rot_x, rot_y = x[q], y[q]
            xr, yr = rotate_batch(rot_x)
        with self.engine.autocast():
            out = self.model(None if stage == "rotation" else x, plan, xr)
        logits, cls_r, rot_r = out if xr is not None else (out, None, None)
        loss = torch.zeros((), device=x.device)
        if logits is not None:
            loss = plan.mix_loss(lambda o, t: F.cross_entropy(o, t, reduction="none"), logits, y) \
                if plan is not None else F.cross_entropy(logits, y)
        if xr is not None:
            # where each rotation is a class of its own (omniglot-vinyals), a rotated image belongs to that class
            yc = torch.cat([self.base.rotated_labels(rot_y, k) for k in range(4)])
            loss = loss + 0.5 * F.cross_entropy(cls_r, yc) + 0.5 * F.cross_entropy(rot_r, yr)
        return loss

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        out = [self.net.backbone(self.normalize(self.engine.to_device(c))).float().cpu() for c in images.split(512)]
        return torch.cat(out)

    def episodes(self, split: data.Split, shot: int, n_episodes: int, seed: int, way: int = 0,
                 features: torch.Tensor | None = None) -> tuple[float, float]:
        cfg = self.cfg
        s, q = sample_episodes(split.labels, n_episodes, way or cfg.n_way, shot, cfg.n_query, seed)
        features = self.features(split.images) if features is None else features
        accs = episode_accuracies(features, s, q, cfg.episode_classifier, cfg.classifier_steps, cfg.classifier_lr)
        return mean_ci95(accs)

    def evaluate(self, epoch):
        if not len(self.val.labels):
            return {}
        acc, ci = self.episodes(self.val, 1, self.cfg.val_episodes, seed=12345)  # the same val episodes every time
        if self.cfg.test_weights == "best" and self.stage(epoch) == "rotation" and self.cfg.method == "s2m2":
            # S2M2 is the model after its mixup stage: the rotation stage's epochs are not candidates to select
            # (nor does early stopping end the run there)
            return {"rotation_stage_val_acc": acc, "rotation_stage_val_ci95": ci}
        return {"val_acc": acc, "val_ci95": ci}

    def keeps_best_weights(self) -> bool:
        return self.cfg.test_weights == "best"

    def finish(self):
        """Test episodes on the novel classes with the final (latest) model, as the paper's protocol, or with
        the weights of the best validation epoch (test_weights=best); Lake's runs with the same weights."""
        cfg, out = self.cfg, {}
        if cfg.test_weights == "best" and self.best_net is not None:
            self.net.load_state_dict(self.best_net)
        features = self.features(self.novel.images)
        for way in cfg.ways or (cfg.n_way,):
            for shot in cfg.shots:
                # the 5-way seeds are the ones every earlier record used
                seed = 2024 + shot + (0 if way == cfg.n_way else 1000 * way)
                acc, ci = self.episodes(self.novel, shot, cfg.test_episodes, seed, way, features)
                out[f"test_{way}way{shot}shot_acc"], out[f"test_{way}way{shot}shot_ci95"] = acc, ci
                self.engine.log(f"test {way}-way {shot}-shot: {100 * acc:.2f} ± {100 * ci:.2f} %")
        if self.lake is not None:
            out.update(self.lake_metrics())
        return {**out, **self.feature_spectra(features)}

    def spectrum_points(self, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
        """The images and labels whose feature spectra are recorded: the first SPECTRUM_CLASSES novel classes
        (the test split; the only one, the base classes being the ones the backbone was fitted on)."""
        if split != "test":
            raise ValueError(f"split={split!r}: the few-shot spectra are of the novel classes (split='test')")
        keep = self._spectrum_rows()
        return self.novel.images[keep], self.novel.labels[keep]

    def _spectrum_rows(self) -> torch.Tensor:
        labels = self.novel.labels
        return torch.isin(labels, labels.unique()[:SPECTRUM_CLASSES])

    def feature_spectra(self, features: torch.Tensor) -> dict:
        """Flattening on classes the backbone never saw (the blog's Figure 6 on few-shot features): the singular
        values of the first SPECTRUM_CLASSES novel classes' features, summarised for the record (feature_sv_*) and
        saved as spectra.json for `mixsuite compare --spectra`."""
        keep = self._spectrum_rows()
        spectra = singular_values(features[keep], self.novel.labels[keep])
        save_spectra(spectra, self.engine.run_dir)
        return spectrum_summary(spectra, prefix="feature_sv_")

    def lake_metrics(self) -> dict:
        """Lake's 20 within-alphabet 20-way 1-shot runs: accuracy (the task's episode classifier, and nearest
        neighbour by cosine), the error in Lake's terms, and a 95% CI over the 20 runs."""
        runs, way = self.lake.answer.shape
        feats = self.features(torch.cat([self.lake.train.flatten(0, 1), self.lake.test.flatten(0, 1)]))
        train, test = feats[: runs * way].view(runs, way, -1), feats[runs * way:].view(runs, way, -1)
        cfg, out = self.cfg, {}
        for name, classifier in (("", cfg.episode_classifier), ("_nn", "nearest")):
            fit = {} if classifier == "nearest" else {"steps": cfg.classifier_steps, "lr": cfg.classifier_lr}
            acc, ci = mean_ci95(lake.run_accuracies(train, test, self.lake.answer, classifier, **fit))
            out[f"lake_{way}way1shot{name}_acc"], out[f"lake_{way}way1shot{name}_ci95"] = acc, ci
            out[f"lake_{way}way1shot{name}_err"] = 1 - acc
        self.engine.log(f"Lake's {runs} runs, {way}-way 1-shot: error {100 * out[f'lake_{way}way1shot_err']:.1f} % "
                        f"({100 * out[f'lake_{way}way1shot_nn_err']:.1f} % nearest neighbour)")
        return out
