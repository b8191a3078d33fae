"""Image classification with the regularisers the paper compares: ERM, input mixup, manifold mixup,
CutMix, dropout and cutout, and manifold mixup's descendants (PatchUp, Noisy Feature Mixup, AlignMixup, FMix,
ResizeMix) with their papers' settings; SGD with the paper's step schedule; test error, NLL, ECE, and the singular
values of the last hidden layer.

The paper reports the best test value seen during training (issue 10 of the authors' repository). The engine records the
final epoch's `test_*` and the select metric's best epoch as `best_*`: without a validation split the select
metric is `test_err` (the paper's protocol, optimistic); with `val_per_class > 0` it is `val_err`, and
`best_test_*` is the test value at the epoch chosen on validation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar

import torch
from torch.utils.data import TensorDataset

from mixsuite import dist
from mixsuite.analysis import (classification_metrics, plot_spectra, save_spectra, singular_values,
                               spectrum_summary)
from mixsuite.compiling import CompileConfig, compiled
from mixsuite.config import RunConfig, added_field, at_least, each, non_negative, one_of, positive, probability
from mixsuite.images import normalize
from mixsuite.mixing import Method, MixingConfig, bce_on_softmax, mixer_from_config, one_hot, soft_cross_entropy
from mixsuite.schedules import SCHEDULES, epoch_scheduler
from mixsuite.task import KeepsBestWeights, Task

from .augment import cutout, random_crop, random_flip
from .data import LOADERS, load_dataset, rank_in_class
from .models import MODELS, build_model, penultimate, timm_name_problem

# What each method trains with: each paper's alpha (cutmix: Yun et al.; patchup, nfm, alignmix, fmix: their code) and
# the descendants' own S on this task's PreActResNets (each paper's CIFAR setting), used while mix_layers is left at manifold
# mixup's default; other settings are each backend's defaults (the paper's). fmix and resizemix mix the input;
# resizemix draws no Beta: its 1.0 only says it mixes (alpha=0 turns any method's mixing off).
PATCHUP_LAYERS = ["input", "conv1", "layer1"]
METHODS = {
    "erm": Method("erm"), "dropout": Method("erm"), "cutout": Method("erm"),
    "input": Method("input", alpha=1.0), "manifold": Method("manifold", alpha=2.0),
    "cutmix": Method("cutmix", alpha=1.0),
    "patchup": Method("patchup", alpha=2.0, layers=PATCHUP_LAYERS),
    "patchup-hard": Method("patchup", alpha=2.0, layers=PATCHUP_LAYERS, options={"mode": "hard"}),
    "nfm": Method("nfm", alpha=1.0, layers=["input", "layer1", "layer2", "layer3"]),
    "alignmix": Method("alignmix", alpha=2.0, layers=["input", "layer4"]),
    "fmix": Method("fmix", alpha=1.0), "resizemix": Method("resizemix", alpha=1.0),
}
LOSSES = {"ce": soft_cross_entropy, "bce": bce_on_softmax}


@dataclass
class ImageConfig(CompileConfig, MixingConfig, RunConfig):
    # defaults: Table 1's PreActResNet18 on CIFAR-10 (1200 epochs, lr / 10 at 400 and 800)
    dataset: Annotated[str, one_of(LOADERS)] = "cifar10"    # cifar10-jpeg | cifar10 | cifar100 | svhn | tiny-imagenet
    method: Annotated[str, one_of(METHODS)] = "manifold"    # erm | input | manifold | cutmix | dropout | cutout |
    #                                          patchup | patchup-hard | nfm | alignmix | fmix | resizemix
    model: Annotated[str, one_of(MODELS, prefixes={"timm:": timm_name_problem})] = "preactresnet18"
    #                                          preactresnet18 | preactresnet34 | wrn28_10 | wrn28_2 | timm:<name>
    width: Annotated[float, positive] = 1.0  # channel multiplier of the models written here
    cifar_stem: bool = True                  # timm models: 3x3 stride-1 first conv, no max-pool
    stem_stride: Annotated[int, at_least(1)] = 1   # models written here: 2 for 64x64 Tiny-ImageNet (the official code)
    alpha: float | None = None               # None: the method's paper value (METHODS)
    mix_layers: list[str] = field(default_factory=lambda: ["input", "layer1", "layer2"])   # the paper's S
    loss: Annotated[str, one_of(LOSSES)] = "ce"   # ce (soft-target cross-entropy) | bce (the official code's BCE
    #                                               on softmax)
    dropout_p: Annotated[float, probability] = 0.5  # method=dropout: before the classifier (inside blocks for WRN)
    cutout_size: Annotated[int, positive] = 16      # method=cutout: one hole of this side
    epochs: int = 1200
    batch_size: Annotated[int, positive] = 100
    eval_batch_size: Annotated[int, positive] = 500
    lr: Annotated[float, positive] = 0.1
    momentum: Annotated[float, probability] = 0.9
    nesterov: bool = True
    weight_decay: Annotated[float, non_negative] = 1e-4
    schedule: Annotated[str, one_of(SCHEDULES)] = "step"    # step | cosine | constant
    lr_milestones: Annotated[list[int], each(at_least(1))] = field(default_factory=lambda: [400, 800])
    lr_gamma: Annotated[float, positive] = 0.1
    crop_padding: Annotated[int, non_negative] = 2   # the official code pads 2, not 4
    flip: bool = True                        # horizontal flips (never for svhn)
    train_per_class: Annotated[int, non_negative] = 0  # 0: every training image not held out for validation
    test_per_class: Annotated[int, non_negative] = 0   # 0: the whole test set
    val_per_class: Annotated[int, non_negative] = 0    # > 0: hold out this many training images per class, select
    #                                                    on them
    download: bool = False
    sv_points: Annotated[int, positive] = 2000  # test images (balanced over classes) whose last hidden layer gives the singular values
    test_every: Annotated[int, at_least(1)] = added_field(1)   # > 1: the test set only every test_every-th epoch and the
                                             # last; the selected epoch's test metrics from its weights, kept when it became best
    train_eval_points: Annotated[int, non_negative] = added_field(0)   # > 0: this many training images (balanced),
                                             # un-augmented, in eval mode: train_acc/err/nll/ece at each evaluation
    plots: bool = True

    method_table: ClassVar[dict[str, Method]] = METHODS

    def check(self) -> list[str]:
        found = super().check()
        if self.per_sample_lambda and self.mixing_backend() == "cutmix":
            found.append("per_sample_lambda: cutmix pastes one box per batch, so it has one lambda per batch; "
                         "leave per_sample_lambda false")
        return found


class ImageTask(KeepsBestWeights, Task):
    name = "image"
    Config = ImageConfig
    primary_metric = "test_err"
    primary_mode = "min"
    baseline_method = "erm"
    select_mode = "min"
    state_attrs = ("net", "optimizer", "scheduler")

    def setup(self):
        cfg, eng = self.cfg, self.engine
        self.data = load_dataset(cfg.dataset, eng.data_root, download=cfg.download,
                                 train_per_class=cfg.train_per_class, test_per_class=cfg.test_per_class,
                                 val_per_class=cfg.val_per_class)
        self.select_metric = "val_err" if self.data.val_x is not None else "test_err"
        self.train_loader = eng.loader(TensorDataset(self.data.train_x, self.data.train_y), cfg.batch_size)
        drop = cfg.dropout_p if cfg.method == "dropout" else 0.0
        self.net = build_model(cfg.model, self.data.num_classes, width=cfg.width, drop_rate=drop,
                               cifar_stem=cfg.cifar_stem, stem_stride=cfg.stem_stride,
                               img_size=tuple(self.data.train_x.shape[-2:]))
        self.model = eng.prepare(self.net)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
        self.scheduler = epoch_scheduler(self.optimizer, cfg.schedule, cfg.epochs, cfg.lr_milestones, cfg.lr_gamma)
        cutmix = cfg.mixes() and cfg.mixing_backend() == "cutmix"
        extra = {"image_size": tuple(self.data.train_x.shape[-2:])} if cutmix else {}
        self.mixer = mixer_from_config(cfg, self.net, eng, **extra)
        self.model = compiled(cfg, self.model)
        self.augment_rng = eng.generator("augment")
        self.criterion = LOSSES[cfg.loss]
        self.train_images, self.train_seconds = 0, 0.0
        self.train_eval = balanced_head(self.data.train_y, cfg.train_eval_points)
        self.oracle = {}      # the best test values seen (the selected epoch's weights: KeepsBestWeights)

    def augment(self, x):
        cfg, data, g = self.cfg, self.data, self.augment_rng
        x = random_crop(x, cfg.crop_padding, g)
        if cfg.flip and data.flip:
            x = random_flip(x, g)
        x = normalize(x, data.mean, data.std)
        return cutout(x, cfg.cutout_size, g) if self.cfg.method == "cutout" else x

    def training_step(self, batch):
        x, y = batch
        x = self.augment(x)
        targets = one_hot(y, self.data.num_classes)
        with self.mixer.step(len(x), device=x.device) as plan, self.engine.autocast():
            out = self.model(x)
        if plan.active:
            targets = plan.mix_targets(targets)
        return {"loss": self.criterion(out, targets)}

    def on_train_epoch_end(self, epoch, logs, samples, seconds):
        self.train_images, self.train_seconds = self.train_images + samples, self.train_seconds + seconds
        return {**logs, "images_per_s": samples / seconds}

    @torch.no_grad()
    def predict(self, x_uint8: torch.Tensor, features: bool = False):
        """Logits (and last hidden features) of uint8 images, in eval mode, on CPU."""
        self.net.eval()
        logits, feats = [], []
        for i in range(0, len(x_uint8), self.cfg.eval_batch_size):
            x = normalize(self.engine.to_device(x_uint8[i:i + self.cfg.eval_batch_size]), self.data.mean,
                          self.data.std)
            with self.engine.autocast():
                h = penultimate(self.net, x)
                logits.append(self.net.get_classifier()(h).float().cpu())
            if features:
                feats.append(h.float().cpu())
        return torch.cat(logits), (torch.cat(feats) if features else None)

    def evaluate(self, epoch):
        cfg, d = self.cfg, self.data
        metrics = {}
        if d.val_x is not None:
            metrics.update(classification_metrics(self.predict(d.val_x)[0], d.val_y, prefix="val_"))
        if self.train_eval is not None:
            idx = self.train_eval
            metrics.update(classification_metrics(self.predict(d.train_x[idx])[0], d.train_y[idx], prefix="train_"))
        if self.test_due(epoch, d.val_x is not None):
            test = classification_metrics(self.predict(d.test_x)[0], d.test_y, prefix="test_")
            for k in ("test_err", "test_nll"):     # the paper's best-test-during-training value (optimistic)
                self.oracle[f"oracle_{k}"] = min(self.oracle.get(f"oracle_{k}", float("inf")), test[k])
            metrics.update(test)
        return metrics

    def keeps_best_weights(self) -> bool:
        return self.cfg.test_every > 1 and self.data.val_x is not None

    def selected_test_metrics(self) -> dict:
        """The test metrics of the weights kept at the epoch chosen on validation (when test_every > 1)."""
        with self.selected_weights() as kept:
            if not kept:
                return {}
            return classification_metrics(self.predict(self.data.test_x)[0], self.data.test_y, prefix="best_test_")

    def spectrum_points(self, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
        """The images (the first sv_points / classes of each class) and labels whose spectra are recorded: the test
        split's; split="train" gives the training images' (clean, as evaluation sees them)."""
        if split not in ("test", "train"):
            raise ValueError(f"split={split!r}: the image spectra are of the test or the training images")
        x, y = (self.data.test_x, self.data.test_y) if split == "test" else (self.data.train_x, self.data.train_y)
        idx = balanced_head(y, self.cfg.sv_points)
        return x[idx], y[idx]

    def finish(self):
        cfg = self.cfg
        images, labels = self.spectrum_points()
        _, feats = self.predict(images, features=True)
        spectra = singular_values(feats, labels)
        if cfg.plots and dist.is_main():   # one copy under torchrun
            plot_spectra({cfg.method: spectra}, self.engine.run_dir / "last_hidden_spectra.png",
                         f"{cfg.model} {cfg.dataset} {cfg.method}, seed {cfg.seed}")
        save_spectra(spectra, self.engine.run_dir)
        return {**self.selected_test_metrics(), **self.oracle, **spectrum_summary(spectra, prefix="last_hidden_sv_"),
                "train_images_per_s": self.train_images / max(self.train_seconds, 1e-9),
                "train_time_s": self.train_seconds}

    def state_dict(self):   # the mixer's generator is the engine's, which the engine checkpoints itself
        return {**super().state_dict(), "train_images": self.train_images, "train_seconds": self.train_seconds,
                "oracle": self.oracle}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.train_images, self.train_seconds = state["train_images"], state["train_seconds"]
        self.oracle = state.get("oracle", {})


def balanced_head(labels: torch.Tensor, n: int) -> torch.Tensor | None:
    """Indices of the first n // classes samples of every class (None for n = 0): a class-balanced subset of a
    dataset stored sorted by class, whose first n samples would hold one or two classes only."""
    if n <= 0:
        return None
    rank, counts = rank_in_class(labels)
    return torch.nonzero(rank < max(1, n // len(counts))).flatten()
