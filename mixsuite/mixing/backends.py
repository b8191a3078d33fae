"""Mixing backends, one plan-drawing rule each, in a registry: erm, input, manifold, cutmix here; the
descendants (patchup, nfm, alignmix, fmix, resizemix) in their own files; third-party ones through the
`mixsuite.mixers` entry-point group.

    mixer = build_mixer("manifold", model, alpha=2.0, layers=["input", "layer1", "layer2"], generator=g)
    with mixer.step(batch_size) as plan:      # k ~ U(S), lambda ~ Beta(alpha, alpha), a permutation
        out = model(x)                        # the hook at layer k mixes h <- lam*h + (1-lam)*h[perm]
    loss = plan.mix_loss(F.cross_entropy, out, y)
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..registry import Registry
from .hooks import INPUT, apply_plan, register_hooks, resolve_layers
from .plan import MixPlan, identity_plan
from .pairing import PermutationPairing
from .sampling import sample_lambda
from .shaped import box_inside, draw_seed

ENTRY_POINT_GROUP = "mixsuite.mixers"


def _is_mixer(obj) -> str | None:
    if isinstance(obj, type) and issubclass(obj, Mixer):
        return None
    return f"{obj!r} is not a subclass of mixsuite.mixing.Mixer"


MIXERS = Registry("mixing backend", entry_point_group=ENTRY_POINT_GROUP, check=_is_mixer)


class Mixer:
    """Draws one MixPlan per training step and applies it to the model through hooks."""

    name = "base"
    default_layers: tuple[str, ...] = ()

    def __init__(self, model: nn.Module | None = None, *, alpha: float = 1.0, layers=None, per_sample: bool = False,
                 generator: torch.Generator | None = None, output_index: int | None = None,
                 pairing=None):
        self.model = model
        self.alpha = float(alpha)
        self.layers = list(layers) if layers else list(self.default_layers)
        self.per_sample = per_sample
        self.generator = generator if generator is not None else generator_from_global_rng()
        self.output_index = output_index
        self.pairing = pairing if pairing is not None else PermutationPairing()
        self.modules = resolve_layers(model, self.layers) if model is not None else {}
        self.device_generators: dict[str, torch.Generator] = {}
        if model is not None:
            register_hooks(model, self.modules)   # all of S now: a model compiled after this sees every hook

    def generator_on(self, device) -> torch.Generator:
        """The generator for draws that land on `device`: the mixer's own where it lives there (a CPU run: its one
        stream, unchanged), else one on `device` (lambda, pairings, masks drawn where the batch is, no copy, so a
        CUDA graph can capture the step), seeded once by a draw from the mixer's own and kept in `state_dict`."""
        if device is None:
            return self.generator
        device = torch.device(device)
        if device.type == self.generator.device.type and device.index in (None, self.generator.device.index):
            return self.generator
        if device.type == "cuda" and device.index is None:   # one generator per device, however it is named
            device = torch.device("cuda", torch.cuda.current_device())
        key = str(device)
        found = self.device_generators.get(key)
        if found is None:
            found = self.device_generators[key] = torch.Generator(device).manual_seed(draw_seed(self.generator))
        return found

    def _choose_layer(self) -> str:
        i = int(torch.randint(len(self.layers), (1,), generator=self.generator, device=self.generator.device))
        return self.layers[i]

    def pair(self, batch_size: int, rows: torch.Tensor | None = None, device=None, labels=None, perm=None):
        """The plan's pairing: `perm` when the caller gives one (row i mixes with perm[i]), else the mixer's
        `pairing` draws it (a permutation; C-Mixup's kernel needs the batch's `labels`)."""
        if perm is not None:
            perm = torch.as_tensor(perm).long()
            if perm.shape != (batch_size,) or (batch_size and not 0 <= int(perm.min()) <= int(perm.max()) < batch_size):
                raise ValueError(f"a given pairing needs one partner index in [0, {batch_size}) per row, got shape "
                                 f"{tuple(perm.shape)}")
            return perm.to(device or self.generator.device)
        return self.pairing(batch_size, generator=self.generator_on(device), rows=rows, device=device, labels=labels)

    def draw(self, batch_size: int, rows: torch.Tensor | None = None, device=None, labels=None, perm=None) -> MixPlan:
        """k ~ U(S), lambda ~ Beta(alpha, alpha) (per batch or per sample), a pairing (within `rows` if given)."""
        if not self.layers:
            raise ValueError(f"the {self.name!r} backend needs at least one mixing layer")
        layer = self._choose_layer()
        lam = sample_lambda(self.alpha, batch_size if self.per_sample else 1, generator=self.generator_on(device),
                            device=device)
        lam = lam if self.per_sample else lam[0]
        perm = self.pair(batch_size, rows, device, labels, perm)
        return MixPlan(layer, lam, perm, rows)

    @contextmanager
    def step(self, batch_size: int, rows: torch.Tensor | None = None, device=None, **pairing):
        """Draw a plan and, within the block, mix the model's forward at the plan's layer. `pairing`: the batch's
        `labels` (for C-Mixup's pairing) or a given `perm` (see `pair`)."""
        plan = self.draw(batch_size, rows, device, **pairing)
        with self.apply(plan):
            yield plan

    @contextmanager
    def apply(self, plan: MixPlan):
        """Within the block, mix the model's forward as `plan` says (a plan drawn earlier with `draw`)."""
        if self.model is None:
            yield plan
            return
        # through apply_plan even when nothing is mixed: it removes the hooks the model's last plan left
        with apply_plan(self.model, plan, self.modules.get(plan.layer), self.output_index):
            yield plan

    def state_dict(self) -> dict:
        state = {"generator": self.generator.get_state()}
        if self.device_generators:
            state["device_generators"] = {key: g.get_state() for key, g in self.device_generators.items()}
        return state

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.device_generators = {}
        for key, saved in state.get("device_generators", {}).items():
            self.device_generators[key] = torch.Generator(key)
            self.device_generators[key].set_state(saved)


@MIXERS.register()
class ERM(Mixer):
    """No mixing: lambda = 1, identity pairing, nothing hooked."""

    name = "erm"

    def __init__(self, model=None, **kw):
        kw["layers"] = []
        super().__init__(model, **kw)

    def draw(self, batch_size, rows=None, device=None, labels=None, perm=None) -> MixPlan:
        return identity_plan(batch_size, device)


@MIXERS.register()
class InputMixup(Mixer):
    """Mixup (Zhang et al., 2018): interpolate the inputs."""

    name = "input"
    default_layers = (INPUT,)

    def __init__(self, model=None, **kw):
        kw["layers"] = [INPUT]
        super().__init__(model, **kw)


@MIXERS.register()
class ManifoldMixup(Mixer):
    """Manifold Mixup (Verma et al., 2019): interpolate hidden states at a layer k ~ U(S) each step."""

    name = "manifold"

    def __init__(self, model=None, **kw):
        if not kw.get("layers"):
            raise ValueError("manifold mixup needs the set S of layers, e.g. layers=['input', 'layer1', 'layer2']")
        super().__init__(model, **kw)


@dataclass
class CutMixPlan(MixPlan):
    """Pastes the partner's box [y0:y1, x0:x1] into each (B, C, H, W) tensor; lambda is the kept area.
    `corners` is the box as a (1, 4) tensor, what `mix` reads (compiled code then guards on no corner)."""

    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    corners: torch.Tensor | None = None

    def __post_init__(self):
        if self.corners is None:
            self.corners = torch.tensor([self.box], device=self.perm.device)

    def mix(self, h: torch.Tensor) -> torch.Tensor:
        if h.dim() != 4:
            raise ValueError(f"cutmix mixes (B, C, H, W) tensors, got shape {tuple(h.shape)}")
        outside = ~box_inside(self.corners.to(h.device), h.shape[-2:])
        out = torch.where(outside, h, h[self.perm.to(h.device)])      # h first: the result keeps h's memory format
        if self.pixel_mask is None:   # the first tensor mixed is the layer's: the targets' mask is at its size
            self.pixel_mask = outside.to(torch.get_default_dtype()).expand(len(h), 1, *h.shape[-2:])
        return out

    def mix_by_weight(self, y):
        return MixPlan.mix(self, y)


@MIXERS.register()
class CutMix(Mixer):
    """CutMix (Yun et al., 2019): a box of the partner is pasted in; lambda corrected to the real box area."""

    name = "cutmix"
    default_layers = (INPUT,)

    def __init__(self, model=None, *, image_size: tuple[int, int] | None = None, **kw):
        if kw.get("per_sample"):
            raise ValueError("cutmix draws one box per batch; per_sample lambda is not supported")
        super().__init__(model, **kw)
        self.image_size = image_size

    def draw(self, batch_size, rows=None, device=None, labels=None, perm=None, image_size=None) -> MixPlan:
        h, w = image_size or self.image_size or (0, 0)
        if not h or not w:
            raise ValueError("cutmix needs image_size=(H, W) (set it on the mixer or pass it to draw)")
        layer = self._choose_layer()
        lam = float(sample_lambda(self.alpha, 1, generator=self.generator)[0])
        box = cutmix_box(h, w, lam, self.generator)
        y0, y1, x0, x1 = box
        lam = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
        perm = self.pair(batch_size, rows, device, labels, perm)
        return CutMixPlan(layer, torch.tensor(lam, device=device), perm, rows, box=box)


def cutmix_box(h: int, w: int, lam: float, generator: torch.Generator) -> tuple[int, int, int, int]:
    """CutMix's box (y0, y1, x0, x1): sides sqrt(1 - lam) of the image's, centre uniform, clipped to the image."""
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy = int(torch.randint(h, (1,), generator=generator, device=generator.device))
    cx = int(torch.randint(w, (1,), generator=generator, device=generator.device))
    return max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w)


def generator_from_global_rng() -> torch.Generator:
    """A generator seeded by a draw from torch's global RNG: `torch.manual_seed` decides the plans of a mixer
    built without a generator (a fixed seed would give every run the same plans whatever its seed)."""
    return torch.Generator().manual_seed(int(torch.randint(2**62, (1,))))


def build_mixer(name: str, model: nn.Module | None = None, **kwargs) -> Mixer:
    """The backend registered under `name` (see `MIXERS.names()`; a plugin's through its entry point)."""
    return MIXERS.get(name)(model, **kwargs)
