"""Handwritten line recognition with CTC, after Moysset & Messina (ICDAR 2019): manifold mixup on the feature
maps of pairs of lines (a batch is padded to its widest line, so partners have equal width) with the mixed loss
lam * CTC(y_a) + (1 - lam) * CTC(y_b), each transcript with its own length; the mixed line's input length is
the larger of the two. Metrics: CER and WER (editdistance) on val and test, per-character NLL.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Annotated, ClassVar

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from mixsuite import dist
from mixsuite.compiling import CompileConfig, compiled
from mixsuite.config import RunConfig, at_least, non_negative, one_of, positive, probability
from mixsuite.mixing import Method, MixingConfig, mixed_ctc_loss, mixer_from_config
from mixsuite.schedules import epoch_scheduler
from mixsuite.task import KeepsBestWeights, Task

from .batching import BucketBatchSampler, LineDataset, collate
from .data import Lines, load_lines
from .model import MODELS, build_model, frames
from .text import Alphabet, BeamDecoder, error_rates, greedy_decode

METHODS = {"erm": Method("erm"), "input": Method("input"), "manifold": Method("manifold")}
DECODERS = ("greedy", "beam")
DATASETS = ("poilus", "iam")


def _tsv_folder_problem(folder: str) -> str | None:
    return None if folder else "tsv: needs the folder that holds labels.tsv, e.g. dataset=tsv:my_lines"


@dataclass
class HandwritingConfig(CompileConfig, MixingConfig, RunConfig):
    dataset: Annotated[str, one_of(DATASETS, prefixes={"tsv:": _tsv_folder_problem})] = "poilus"
    #                                     poilus | iam | tsv:<folder>
    method: Annotated[str, one_of(METHODS)] = "manifold"   # erm | input | manifold
    model: Annotated[str, one_of(MODELS)] = "gated"         # gated (the paper's) | crnn
    width: Annotated[int, positive] = 1   # channel multiplier
    hidden: Annotated[int, positive] = 128
    dropout: Annotated[float, probability] = 0.2
    height: Annotated[int, positive] = 64
    max_width: Annotated[int, positive] = 1600
    epochs: int = 20
    batch_size: Annotated[int, positive] = 16
    lr: Annotated[float, positive] = 1e-3
    schedule: Annotated[str, one_of("constant", "cosine")] = "constant"   # constant | cosine (to 0 over the epochs, per epoch)
    clip_grad: Annotated[float, non_negative] = 5.0   # 0: no clipping
    alpha: float = 2.0
    mix_layers: list[str] = field(default_factory=lambda: ["input", "block1", "block2", "block3"])
    augment: bool = False                 # light random affine + time/frequency masking
    decoder: Annotated[str, one_of(DECODERS)] = "greedy"   # greedy | beam (needs flashlight-text: the htr extra)
    beam_size: Annotated[int, at_least(1)] = 10
    lexicon: bool = False                 # beam search restricted to the training words
    train_lines: Annotated[int, non_negative] = 0   # 0 = all; fewer for quick runs
    eval_lines: Annotated[int, non_negative] = 0

    method_table: ClassVar[dict[str, Method]] = METHODS

    def check(self) -> list[str]:
        found = super().check()
        if self.decoder == "beam" and importlib.util.find_spec("flashlight") is None:
            found.append("decoder: beam search needs flashlight-text (the htr extra: pip install -e '.[htr]'); "
                         "install it or use decoder=greedy")
        return found


class HandwritingTask(KeepsBestWeights, Task):
    name = "handwriting"
    Config = HandwritingConfig
    primary_metric = "best_test_cer"
    primary_mode = "min"
    baseline_method = "erm"
    select_metric = "val_cer"
    select_mode = "min"
    state_attrs = ("net", "optimizer", "scheduler")

    def setup(self):
        cfg, eng = self.cfg, self.engine
        splits = load_lines(eng.data_root, cfg.dataset, cfg.height, cfg.max_width)
        splits = {s: _first(lines, cfg.train_lines if s == "train" else cfg.eval_lines) for s, lines in splits.items()}
        self.splits = splits
        self.alphabet = Alphabet(splits["train"].texts)
        self.datasets = {s: LineDataset(lines, self.alphabet) for s, lines in splits.items()}
        self.unknown = {}
        for s in ("val", "test"):  # encoding counted the characters the training text never shows
            self.unknown[f"unknown_chars_{s}"] = sum(len(t) - len(e) for t, e in zip(splits[s].texts, self.datasets[s].targets))
        self.train_sampler = BucketBatchSampler(splits["train"].widths, cfg.batch_size // dist.world_size(), True, cfg.seed)
        self.train_loader = DataLoader(self.datasets["train"], batch_sampler=self.train_sampler, collate_fn=collate,
                                       num_workers=cfg.num_workers)
        self.clip_grad_norm = cfg.clip_grad
        self.net = build_model(cfg.model, len(self.alphabet), cfg.width, cfg.hidden, cfg.dropout)
        self.model = eng.prepare(self.net)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.scheduler = epoch_scheduler(self.optimizer, cfg.schedule, cfg.epochs)
        self.mixer = mixer_from_config(cfg, self.net, eng)
        self.model = compiled(cfg, self.model)
        self.augment = _augmentation() if cfg.augment else None
        eng.log(f"{cfg.dataset}: {len(splits['train'])}/{len(splits['val'])}/{len(splits['test'])} lines, "
                f"{len(self.alphabet) - 1} characters; unknown in val/test: {self.unknown}")

    def on_train_epoch_start(self, epoch):
        super().on_train_epoch_start(epoch)
        self.train_sampler.set_epoch(epoch)

    def training_step(self, batch):
        x, widths, targets, tlens, _ = batch
        if self.augment is not None:
            x = self.augment(x)
        return {"loss": self.loss(x, widths, targets, tlens)}

    def loss(self, x, widths, targets, tlens):
        with self.mixer.step(len(x), device=x.device) as plan, self.engine.autocast():
            log_probs = self.model(x)
        log_probs, lengths = log_probs.float(), frames(widths)
        if not plan.active:
            return F.ctc_loss(log_probs, targets, lengths, tlens, zero_infinity=True)
        perm = plan.perm.to(x.device)
        return mixed_ctc_loss(log_probs, targets, tlens, targets[perm], tlens[perm],
                              torch.maximum(lengths, lengths[perm]), plan.lam)

    @torch.no_grad()
    def transcribe(self, split: str, beam: BeamDecoder | None = None) -> tuple[list[str], float]:
        """Hypotheses for every line of `split` (in order) and the per-character NLL."""
        self.net.eval()
        ds = self.datasets[split]
        sampler = BucketBatchSampler(self.splits[split].widths, self.cfg.batch_size, shuffle=False)
        hyps, nll, chars = [None] * len(ds), 0.0, 0
        for batch in sampler.batches:
            x, widths, targets, tlens, idx = self.engine.to_device(collate([ds[i] for i in batch]))
            with self.engine.autocast():
                log_probs = self.net(x).float()
            lengths = frames(widths)
            line_nll = F.ctc_loss(log_probs, targets, lengths, tlens, reduction="none")
            feasible = torch.isfinite(line_nll)    # a line too long for its frames has no CTC path: left out
            nll += line_nll[feasible].sum().item()
            chars += int(tlens[feasible].sum())
            texts = beam(log_probs, lengths) if beam else [self.alphabet.decode(s) for s in greedy_decode(log_probs, lengths)]
            for i, t in zip(idx.tolist(), texts):
                hyps[i] = t
        return hyps, nll / max(1, chars)

    def evaluate(self, epoch):
        hyps, nll = self.transcribe("val")
        rates = error_rates(hyps, self.splits["val"].texts)
        return {"val_cer": rates["cer"], "val_wer": rates["wer"], "val_nll_per_char": nll, **self._test()}

    def _test(self, beam=None, prefix="test_"):
        hyps, nll = self.transcribe("test", beam)
        rates = error_rates(hyps, self.splits["test"].texts)
        return {f"{prefix}cer": rates["cer"], f"{prefix}wer": rates["wer"], f"{prefix}nll_per_char": nll}

    def keeps_best_weights(self) -> bool:
        return self.cfg.decoder == "beam"   # beam-decode the selected epoch's weights too, at the end

    def finish(self):
        """Beam decoding of the test lines: test_beam_* with the last weights, best_test_beam_* with the weights
        of the epoch chosen on validation CER (the epoch of the greedy best_test_*)."""
        out = dict(self.unknown)
        if self.cfg.decoder == "beam":
            words = [w for t in self.splits["train"].texts for w in t.split()] if self.cfg.lexicon else None
            beam = BeamDecoder(self.alphabet, self.cfg.beam_size, words, self.engine.run_dir / "lexicon.txt")
            out.update(self._test(beam, prefix="test_beam_"))
            if self.best_net is not None:
                self.net.load_state_dict(self.best_net)
                out.update(self._test(beam, prefix="best_test_beam_"))
        return out


def _first(lines: Lines, n: int) -> Lines:
    if not n or n >= len(lines):
        return lines
    end = int(lines.widths[:n].sum())
    return Lines(lines.pixels[:, :end], lines.widths[:n], lines.texts[:n])


def _augmentation():
    """Light random affine on the line images, then torchaudio's time and frequency masking (height = frequency)."""
    import torchaudio
    from torchvision.transforms import v2

    affine = v2.RandomAffine(degrees=1.5, shear=5, scale=(0.93, 1.03))
    time_mask, freq_mask = torchaudio.transforms.TimeMasking(24, iid_masks=True), \
        torchaudio.transforms.FrequencyMasking(6, iid_masks=True)
    return lambda x: freq_mask(time_mask(affine(x)))
