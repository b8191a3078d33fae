"""Manifold Mixup in a Hugging Face `Trainer`: hidden states mixed at named layers inside `compute_loss`.

    trainer = MixupTrainer(model=model, args=args, train_dataset=train,
                           mix_layers=["bert.embeddings", "bert.encoder.layer.0", "bert.encoder.layer.1"],
                           mix_alpha=2.0, mix_seed=0)
    trainer.train()

Each training step draws a plan (a layer of S, lambda, a pairing), runs the model's forward with the layer's output
mixed and trains on `lam * loss(logits, labels) + (1 - lam) * loss(logits, labels[perm])` (`mix_loss`: cross-entropy
by default, any `loss(logits, labels)` otherwise); evaluation is not mixed. Layer names are the model's own
(`model.named_modules()`), taken on the unwrapped model. Token ids cannot be interpolated: `input` on a model fed
`input_ids` is refused with the name of its embedding module to use instead. Padding: a row keeps its own
attention mask, so rows of different lengths mix their padded positions too (group by length to avoid it).
The mixer's generator is saved in each checkpoint folder beside the RNG states (`mixsuite_mixer.pt`), so
`trainer.train(resume_from_checkpoint=...)` draws the plans the unbroken run would have.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from ..extras import require
from ..mixing import build_mixer

transformers = require("transformers", "mixsuite.integrations.transformers")
MIXER_FILE = "mixsuite_mixer.pt"


class MixupTrainer(transformers.Trainer):
    """A `transformers.Trainer` whose training loss is mixed at `mix_layers` by the `mix_backend` mixer."""

    def __init__(self, *args, mix_layers, mix_alpha: float = 2.0, mix_backend: str = "manifold", mix_seed: int = 0,
                 mix_loss=F.cross_entropy, mix_options: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.mix_layers, self.mix_alpha, self.mix_backend = list(mix_layers), mix_alpha, mix_backend
        self.mix_loss, self.mix_options = mix_loss, dict(mix_options or {})
        self.mix_generator = torch.Generator().manual_seed(mix_seed)
        self.mixer = None
        self.mix_plan = None   # the last training step's plan (its layer, lam, perm), e.g. for logging

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if self.mixer is None:   # on the unwrapped model: DDP / compiled wrappers have other module names
            self.mixer = build_mixer(self.mix_backend, self.accelerator.unwrap_model(model), layers=self.mix_layers,
                                     alpha=self.mix_alpha, generator=self.mix_generator, **self.mix_options)
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        with self.mixer.step(len(labels), device=labels.device) as plan:
            outputs = model(**inputs)
        self.mix_plan = plan
        loss = plan.mix_loss(self.mix_loss, outputs["logits"], labels)
        return (loss, outputs) if return_outputs else loss

    def _save_rng_state(self, output_dir):
        super()._save_rng_state(output_dir)
        if self.args.should_save:
            torch.save(self.mix_generator.get_state(), os.path.join(output_dir, MIXER_FILE))

    def _load_rng_state(self, checkpoint):
        super()._load_rng_state(checkpoint)
        path = os.path.join(checkpoint, MIXER_FILE) if checkpoint is not None else None
        if path is not None and os.path.isfile(path):
            self.mix_generator.set_state(torch.load(path, weights_only=True))
