"""Deep metric learning on a zero-shot split (Roth et al. 2020, "Revisiting Training Strategies and
Generalization Performance in Deep Metric Learning"): learn an L2-normalised embedding on some classes, then
retrieve among classes never seen in training. Roth et al. found that embeddings whose variance sits in fewer
directions (a larger spectral decay rho) transfer worse; Manifold Mixup flattens class representations. This
task measures where each method lands on rho and on Recall@1.

Methods:
- `erm`: the loss alone.
- `manifold`: Manifold Mixup on the backbone's stages named in `mix_layers` (k ~ U(S), lambda ~ Beta(alpha,
  alpha), a random pairing); the loss of the mixed batch is lam * L(emb, y_a) + (1 - lam) * L(emb, y_b).
  For a classification-based loss (normsoftmax, proxyanchor) that is the usual mixed-target loss. For a
  pair / triplet loss it is our choice, written down here: the same loss computed twice on the mixed
  embeddings, once with every sample labelled by its own class (y_a) and once by its partner's (y_b), each
  labelling mining its own tuples, then mixed by lambda. (Interpolating targets is not open to these losses:
  their tuples need hard class identities.)
- `rho`: rho-regularisation, for the triplet-based ranking losses (margin, triplet): a share `p_switch` of
  the mined triplets (a, p, n) become (a, a, j), j another sample of a's class (losses.py).
- `manifold-rho`: both; each labelling's triplets are switched.

Every evaluation records on the test classes Recall@1/2/4/8, MAP@R, rho (mixsuite.analysis.rho_spectrum),
and the effective rank of the (centred) embedding spectrum; on the validation classes Recall@1 and MAP@R, one of
which (`select_on`) selects the best epoch. `test_every` > 1 skips the test classes on most evaluations; the weights of the selected epoch
are kept and tested at the end. The end of a run adds the test NMI (k-means) and rho of (at most ~5,000)
training images' embeddings, of the last weights and (best_*) of the selected epoch's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar

import torch

from mixsuite import dist
from mixsuite.analysis import rho_spectrum, singular_values, spectrum_summary
from mixsuite.compiling import CompileConfig, compiled
from mixsuite.config import RunConfig, added_field, at_least, non_negative, one_of, positive, probability
from mixsuite.errors import UserError
from mixsuite.images import normalize
from mixsuite.mixing import Method, MixingConfig, mixer_from_config
from mixsuite.models import build_backbone, timm_name_problem
from mixsuite.models.backbones import BACKBONES
from mixsuite.task import KeepsBestWeights, Task

from . import data
from .data import DATASETS
from .losses import LOSSES, SWITCHABLE, build_criterion
from .model import Embedder, freeze_batchnorm
from .retrieval import retrieval_metrics

# rho and manifold-rho switch triplets in the loss (losses.py); manifold and manifold-rho mix the backbone's stages
METHODS = {"erm": Method("erm"), "manifold": Method("manifold"), "rho": Method("erm"),
           "manifold-rho": Method("manifold")}


@dataclass
class MetricConfig(CompileConfig, MixingConfig, RunConfig):
    dataset: Annotated[str, one_of(DATASETS)] = "omniglot"      # omniglot | cub | cars196 | folder
    data_folder: str = ""                # dataset=folder: a folder of <class>/<image> files
    method: Annotated[str, one_of(METHODS)] = "erm"             # erm | manifold | rho | manifold-rho
    loss: Annotated[str, one_of(LOSSES)] = "margin"   # margin | triplet | multisimilarity | normsoftmax | proxyanchor
    backbone: Annotated[str, one_of(BACKBONES, prefixes={"timm:": timm_name_problem})] = "conv4"
    #                                      conv4 | resnet12 | timm:<name>
    cifar_stem: bool = True              # timm models: 3x3 stride-1 first conv, no max-pool
    pretrained: bool = False             # timm models: start from the published weights (timm fetches them)
    freeze_bn: bool = False              # BatchNorm statistics fixed in training (Roth et al.)
    image_size: Annotated[int, at_least(8)] = 28
    flip: bool = False                   # random horizontal flips (photos, not characters)
    embed_dim: Annotated[int, positive] = 64
    val_classes: Annotated[int, non_negative] = 64   # the last classes of the training split, held out to select
    train_classes: Annotated[int, non_negative] = 0  # 0: all; fewer for quick runs (the first ones)
    test_classes: Annotated[int, non_negative] = 0   # 0: all; fewer for quick runs (the first ones)
    epochs: Annotated[int, at_least(1)] = 10
    batch_size: Annotated[int, positive] = 112       # Roth et al.: 112 = 56 classes x 2
    samples_per_class: Annotated[int, at_least(2)] = 2   # fewer gives batches without positives
    lr: Annotated[float, positive] = 1e-3            # Adam
    weight_decay: Annotated[float, non_negative] = 0.0
    loss_lr_scale: Annotated[float, positive] = 100.0    # lr of the loss's own parameters (class vectors, proxies)
    alpha: Annotated[float, non_negative] = 2.0
    mix_layers: list[str] = field(default_factory=lambda: ["input", "block1", "block2", "block3"])
    p_switch: Annotated[float, probability] = 0.3    # rho, manifold-rho: share of triplets switched (Roth: 0.3-0.4)
    eval_batch_size: Annotated[int, positive] = 512
    eval_every: Annotated[int, at_least(1)] = 2
    test_every: Annotated[int, at_least(1)] = 1      # the test classes every test_every-th evaluation and at the end
    # The validation metric that selects the epoch (and stops a run early). Recall@1 saturates on few, easy classes
    # (Omniglot's 64: ~0.95, moving by ±0.01 from one epoch to the next) while MAP@R still rises.
    select_on: Annotated[str, one_of("recall_at_1", "map_at_r")] = added_field("recall_at_1")

    method_table: ClassVar[dict[str, Method]] = METHODS

    def check(self) -> list[str]:
        found = super().check()
        if self.method in ("rho", "manifold-rho") and self.loss not in SWITCHABLE:
            found.append(f"loss: method={self.method} switches triplets (rho-regularisation); loss must be one of "
                         f"{', '.join(SWITCHABLE)}, not {self.loss!r}")
        if self.batch_size % self.samples_per_class:
            found.append(f"batch_size: {self.batch_size} must be a multiple of samples_per_class="
                         f"{self.samples_per_class}")
        if self.dataset == "folder" and not self.data_folder:
            found.append("data_folder: dataset=folder needs data_folder=<a folder of <class>/<image> files>")
        return found


class MetricTask(KeepsBestWeights, Task):
    name = "metric"
    Config = MetricConfig
    primary_metric = "test_recall_at_1"
    baseline_method = "erm"
    state_attrs = ("net", "criterion", "optimizer")

    def setup(self):
        cfg, eng = self.cfg, self.engine
        self.train, self.val, self.test = data.load(cfg.dataset, eng.data_root, cfg.image_size, cfg.val_classes,
                                                    cfg.data_folder)
        if cfg.train_classes:
            self.train = self.train.subset_classes(cfg.train_classes)
        if cfg.test_classes:
            self.test = self.test.subset_classes(cfg.test_classes)
        data.require_data(self.train, self.val, self.test, data.source_of(cfg.dataset, eng.data_root, cfg.data_folder),
                          cfg.batch_size, cfg.samples_per_class, cfg.val_classes)
        self.select_metric = f"val_{cfg.select_on}" if len(self.val.labels) else f"test_{cfg.select_on}"
        sample = self.train.images[:: max(1, len(self.train.images) // 2000)].float() / 255
        self.mean = sample.mean(dim=(0, 2, 3)).view(1, -1, 1, 1)
        self.std = sample.std(dim=(0, 2, 3)).view(1, -1, 1, 1)
        channels = self.train.images.shape[1]
        backbone = build_backbone(cfg.backbone, channels, cifar_stem=cfg.cifar_stem, pretrained=cfg.pretrained)
        self.net = Embedder(backbone, cfg.embed_dim)
        self.model = eng.prepare(self.net)
        p_switch = cfg.p_switch if cfg.method in ("rho", "manifold-rho") else 0.0
        self.criterion = build_criterion(cfg.loss, self.train.n_classes, cfg.embed_dim, p_switch=p_switch,
                                         generator=eng.generator("mining")).to(eng.device)
        groups = [{"params": self.net.parameters()}]
        if list(self.criterion.parameters()):
            if dist.world_size() > 1:   # DDP would not average the class vectors' gradients over the processes
                raise UserError(f"loss={cfg.loss} learns class vectors, which are not synchronised across "
                                "processes yet; run it in one process, or use a ranking loss under torchrun")
            groups.append({"params": self.criterion.parameters(), "lr": cfg.lr * cfg.loss_lr_scale})
        self.optimizer = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.mixer = mixer_from_config(cfg, self.net.backbone, eng)
        self.model = compiled(cfg, self.model)
        self.train_loader = data.BalancedBatches(self.train, cfg.batch_size, cfg.samples_per_class,
                                                 eng.generator("batches"), dist.rank(), dist.world_size())
        self.flip_rng = eng.generator("flip")
        self.train_seconds = 0.0
        self.tested_epoch = None        # the last epoch whose evaluation included the test classes

    def normalize(self, x_uint8):
        return normalize(x_uint8, self.mean, self.std)

    def on_train_epoch_start(self, epoch):
        super().on_train_epoch_start(epoch)
        if self.cfg.freeze_bn:
            freeze_batchnorm(self.net)

    def training_step(self, batch):
        x, y = batch
        x = self.normalize(x)
        if self.cfg.flip:
            flip = (torch.rand(len(x), generator=self.flip_rng) < 0.5).to(x.device)
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        with self.mixer.step(len(x), device=x.device) as plan, self.engine.autocast():
            emb = self.model(x)
        return {"loss": plan.mix_loss(self.criterion, emb, y)}

    def on_train_epoch_end(self, epoch, logs, samples, seconds):
        self.train_seconds += seconds
        return logs

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        out = []
        for chunk in images.split(self.cfg.eval_batch_size):
            with self.engine.autocast():
                out.append(self.net(self.normalize(self.engine.to_device(chunk))).float().cpu())
        return torch.cat(out)

    def test_metrics(self, test: torch.Tensor, prefix: str) -> dict:
        """Retrieval on the test classes, rho and the spectrum summary of their embeddings `test`."""
        metrics = retrieval_metrics(test, self.test.labels, prefix=prefix)
        metrics[f"{prefix}rho"] = rho_spectrum(test)
        metrics.update(spectrum_summary(singular_values(test, self.test.labels), prefix=f"{prefix}sv_"))
        return metrics

    def evaluate(self, epoch):
        metrics = {}
        if len(self.val.labels):
            metrics.update(retrieval_metrics(self.embed(self.val.images), self.val.labels, prefix="val_"))
        if self.test_due(epoch, len(self.val.labels) > 0):
            metrics.update(self.test_metrics(self.embed(self.test.images), "test_"))
            self.tested_epoch = epoch
        return metrics

    def keeps_best_weights(self) -> bool:
        return len(self.val.labels) > 0

    def extension_problem(self, old_epochs: int) -> str | None:
        """Adam at a constant lr, nothing staged over the run: only the test epochs depend on `epochs` (the last one
        is always tested), so a shorter run extends only if its last epoch is one the longer run tests too."""
        every = self.test_period(len(self.val.labels) > 0)
        if old_epochs % every:
            return f"its last epoch {old_epochs} was tested only because it was the last (a test every {every} epochs)"
        return None

    def finish(self):
        """The last weights' test NMI (one k-means cluster per class) and rho of the training classes, and their
        test_* if the last evaluation skipped the test classes (an early stop); with the weights kept at the epoch
        chosen on validation, best_test_nmi and best_train_rho, and best_test_* when test_every > 1 (otherwise
        the runner has them from that epoch's evaluation)."""
        metrics, test = {"train_time_s": self.train_seconds}, self.embed(self.test.images)
        if self.tested_epoch != self.engine.epoch:
            metrics.update(self.test_metrics(test, "test_"))
        metrics.update(self.end_metrics(test, ""))
        with self.selected_weights() as kept:
            if kept:
                test = self.embed(self.test.images)
                metrics.update(self.end_metrics(test, "best_"))
                if self.cfg.test_every > 1:
                    metrics.update(self.test_metrics(test, "best_test_"))
        line = f"test NMI {metrics['test_nmi']:.4f}, train rho {metrics['train_rho']:.4f}"
        if kept:
            line += f"; selected epoch: {metrics['best_test_nmi']:.4f}, {metrics['best_train_rho']:.4f}"
        self.engine.log(line)
        return metrics

    def end_metrics(self, test: torch.Tensor, prefix: str) -> dict:
        """The test NMI of the embeddings `test` and the current weights' training-image rho, taken once, at the end."""
        metrics = retrieval_metrics(test, self.test.labels, knn=False, nmi=True, seed=self.cfg.seed,
                                    prefix=f"{prefix}test_")
        every = self.train.images[:: max(1, len(self.train.images) // 5000)]     # at most ~5,000, evenly strided
        metrics[f"{prefix}train_rho"] = rho_spectrum(self.embed(every))
        return metrics

    def state_dict(self):
        return {**super().state_dict(), "train_seconds": self.train_seconds}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.train_seconds = state["train_seconds"]

