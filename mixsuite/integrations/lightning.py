"""Manifold Mixup in a Lightning fit: a callback that mixes the LightningModule at named layers.

    mixup = ManifoldMixupCallback(layers=["input", "net.layer1", "net.layer2"], alpha=2.0, seed=0)
    trainer = L.Trainer(callbacks=[mixup])

    def training_step(self, batch, batch_idx):          # in the LightningModule
        x, y = batch
        return self.mix_plan.mix_loss(F.cross_entropy, self(x), y)

Before each training batch the callback draws a plan (a layer of S, lambda, a pairing) and puts it on the module as
`mix_plan`; the forward inside that batch's `training_step` is mixed at the plan's layer, the loss is mixed with
`mix_plan.mix_loss` (or the targets with `mix_plan.mix_targets`). Layer names are the module's own
(`pl_module.named_modules()`; `input` is its forward's input). Validation and test forwards are never mixed.
The mixer's generator is the callback's state in Lightning's checkpoint, so a fit resumed from one
(`trainer.fit(model, ckpt_path=...)`) draws the plans the unbroken fit would have.
"""
from __future__ import annotations

import torch

from ..extras import require
from ..mixing import build_mixer

L = require("lightning", "mixsuite.integrations.lightning")


class ManifoldMixupCallback(L.Callback):
    """Mix `pl_module` at `layers` with the `backend` mixer (manifold by default; any of `build_mixer`'s names)."""

    def __init__(self, layers, alpha: float = 2.0, backend: str = "manifold", seed: int = 0, **options):
        self.layers, self.alpha, self.backend, self.options = list(layers), alpha, backend, options
        self.generator = torch.Generator().manual_seed(seed)
        self.mixer = None
        self._open = None   # the running step's context: entered at batch start, left before backward

    @property
    def state_key(self) -> str:
        return f"{type(self).__name__}[{self.backend}:{','.join(self.layers)}]"

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.mixer is None:
            self.mixer = build_mixer(self.backend, pl_module, layers=self.layers, alpha=self.alpha,
                                     generator=self.generator, **self.options)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._close()
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        self._open = self.mixer.step(len(x), device=x.device)
        pl_module.mix_plan = self._open.__enter__()

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self._close()   # the mixed forward has run; a recomputation in backward (checkpointing) still mixes

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._close()
        pl_module.mix_plan = None

    def _close(self) -> None:
        if self._open is not None:
            opened, self._open = self._open, None
            opened.__exit__(None, None, None)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.generator.set_state(state_dict["generator"])
