"""The mixing fields every mixing task shares, and the one factory that builds a task's mixer from them.

    @dataclass
    class MyConfig(MixingConfig, RunConfig):
        method: str = "manifold"
        mix_layers: list[str] = field(default_factory=lambda: ["input", "layer1"])   # a task's own S

    self.mixer = mixer_from_config(cfg, model, engine)        # in Task.setup()

A task says what each method trains with in one table, timm's default_cfgs pattern, named by its config:

    METHODS = {"manifold": Method("manifold", alpha=2.0),
               "patchup-hard": Method("patchup", alpha=2.0, layers=["input", "conv1", "layer1"],
                                      options={"mode": "hard"}),
               "dropout": Method("erm")}
    class MyConfig(MixingConfig, RunConfig):
        method_table: ClassVar[dict] = METHODS

A method not in the table trains with the backend of its name. `Method.alpha` is used where the config's alpha is
None, `Method.layers` while mix_layers is left at the task's default; `options` go to the backend. The table is a
class attribute, not a field: no config hash changes with it. `cfg.method_used()` is that resolution, done once
here for the mixer, the record's `mixing` field and bench/mixing_overhead.py.

alpha = 0 (as mix_prob = 0, or mix_off_epoch = 1) means no mixing at all: the mixer is `erm` and the run is
recorded as `<method>-nomix`, so a table never calls it by the mixing method's name.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Annotated, ClassVar

from torch import nn

from ..config import added_field, at_least, non_negative, one_of, positive, probability
from .backends import MIXERS, Mixer
from .gate import GatedMixer
from .pairing import PAIRINGS, build_pairing

NO_MIXING_SUFFIX = "-nomix"


@dataclass(frozen=True)
class Method:
    """One row of a task's method table: the backend a method trains with, and its own settings (None: the
    config's field)."""

    backend: str = "erm"
    alpha: float | None = None             # where the config's alpha is None (a task whose alpha defaults per method)
    layers: list[str] | None = None        # while mix_layers is left at the task's default (a method's own S)
    options: dict = field(default_factory=dict)   # backend keyword arguments (patchup's mode="hard")
    model: str | None = None               # the task's own model for the method, where it has several (graphmix)


@dataclass
class MixingConfig:
    """Mix into a task's RunConfig subclass. A task re-declares a field to change its default; the rules stay.

    The fields were added to the tasks after runs were recorded, so those a task did not have are `added_field`s
    (in the hash only when set): every recorded config keeps its hash.
    """

    alpha: Annotated[float, non_negative] = 2.0             # lambda ~ Beta(alpha, alpha); 0: no mixing
    mix_layers: list[str] = added_field([])                  # S by module name ("input": the input); []: the backend's
    per_sample_lambda: bool = added_field(False)             # one lambda per example instead of one per batch
    mix_prob: Annotated[float, probability] = added_field(1.0)            # the share of training steps that mix
    mix_off_epoch: Annotated[int | None, at_least(1)] = added_field(None)  # no mixing from this epoch on
    pairing: Annotated[str, one_of(*PAIRINGS)] = added_field("permutation")   # cmixup: C-Mixup's label kernel
    cmixup_bandwidth: Annotated[float, positive] = added_field(1.0)   # sigma of that kernel, in label units

    method_table: ClassVar[dict[str, Method]] = {}   # the task's METHODS

    def method_entry(self) -> Method:
        """The method's row of the table, as written (a method not in it: the backend of its name)."""
        return self.method_table.get(self.method) or Method(self.method)

    def method_used(self) -> Method:
        """The method's row resolved against the config: its alpha and S as the backend gets them."""
        entry = self.method_entry()
        alpha = self.alpha if self.alpha is not None else entry.alpha if entry.alpha is not None else 0.0
        layers = self.mix_layers
        if entry.layers is not None and layers == _default_of(self, "mix_layers"):
            layers = entry.layers
        return replace(entry, alpha=alpha, layers=list(layers))

    def mixing_backend(self) -> str:
        """The backend the method trains with ('erm' for a method that never mixes)."""
        return self.method_entry().backend

    def mixing_alpha(self) -> float:
        return self.method_used().alpha

    def mixing_layers(self) -> list[str]:
        """The set S the backend draws its layer from."""
        return self.method_used().layers

    def mixes(self) -> bool:
        """Whether any training step mixes."""
        return (self.mixing_backend() != "erm" and self.mixing_alpha() > 0 and self.mix_prob > 0
                and (self.mix_off_epoch is None or self.mix_off_epoch > 1))

    def method_label(self) -> str:
        """The method as records and tables name it: a mixing method that never mixes gets NO_MIXING_SUFFIX."""
        if self.mixing_backend() == "erm" or self.mixes():
            return self.method
        return self.method + NO_MIXING_SUFFIX

    def mixing_pairing(self):
        """The pairing the backend draws with (mixsuite.mixing.pairing)."""
        return build_pairing(self.pairing, self.cmixup_bandwidth)

    def check(self) -> list[str]:
        found = super().check() if hasattr(super(), "check") else []
        backend = self.mixing_backend()
        if self.alpha is None and backend != "erm" and self.method_entry().alpha is None:
            found.append(f"alpha: {self.method} has no default alpha (its row of the method table); set one, "
                         "e.g. alpha=1.0")
        if backend in MIXERS and self.mixes() and not MIXERS.get(backend).default_layers and not self.mixing_layers():
            found.append(f"mix_layers: {self.method} mixes at a layer drawn from mix_layers; name at least one "
                         "module (or 'input'), e.g. mix_layers=[input,layer1]")
        return found


def _default_of(cfg, name: str):
    f = next(f for f in fields(cfg) if f.name == name)
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _resolve(cfg: MixingConfig) -> tuple[Method, type[Mixer], list[str] | None]:
    """The method as it trains (backend erm where nothing mixes), its backend's class, and the layers it gets
    (None: a backend with its own)."""
    used = cfg.method_used() if cfg.mixes() else Method("erm")
    cls = MIXERS.get(used.backend)
    return used, cls, None if cls.default_layers else used.layers


def mixing_used(cfg) -> dict | None:
    """What a run mixes with, as resolved (a method's own alpha and S, not the fields' defaults), for its record;
    None for a config without mixing fields."""
    if not isinstance(cfg, MixingConfig):
        return None
    used, cls, layers = _resolve(cfg)
    if used.backend == "erm":
        return {"backend": "erm"}
    record = {"backend": used.backend, "alpha": used.alpha,
            "layers": list(cls.default_layers if layers is None else layers),
            "mix_prob": cfg.mix_prob, "mix_off_epoch": cfg.mix_off_epoch, "per_sample_lambda": cfg.per_sample_lambda}
    if cfg.pairing != "permutation":   # records of permutation runs stay as they were
        record.update(pairing=cfg.pairing, cmixup_bandwidth=cfg.cmixup_bandwidth)
    return record


def mixer_from_config(cfg: MixingConfig, model: nn.Module | None, engine, **backend_kwargs) -> Mixer:
    """The mixer `cfg` asks for, drawing from the engine's seeded, checkpointed 'mix' generator.

    `engine` gives `generator(name)`, and `epoch` and `step_count` for mix_prob / mix_off_epoch. mix_layers go to
    the backends that choose a layer (manifold); those with their own (input, cutmix) keep theirs.
    The method's options and `backend_kwargs` go to the backend (cutmix's image_size). With `pairing: cmixup`
    the task passes each batch's labels to `mixer.step(..., labels=y)`.
    """
    used, cls, layers = _resolve(cfg)
    mixer = cls(model, alpha=cfg.mixing_alpha(), layers=layers, per_sample=cfg.per_sample_lambda,
                generator=engine.generator("mix"), pairing=cfg.mixing_pairing(), **used.options, **backend_kwargs)
    if used.backend == "erm" or (cfg.mix_prob >= 1 and cfg.mix_off_epoch is None):
        return mixer   # draws exactly as before these options existed
    return GatedMixer(mixer, cfg.mix_prob, cfg.mix_off_epoch, clock=engine)
