"""`compile=true`: a task's model run through torch.compile, wrapped after its mixer is built, so the mixing
hooks, registered once when the mixer is built, are part of what is compiled (mixsuite/mixing/hooks.py).

    @dataclass
    class MyConfig(CompileConfig, MixingConfig, RunConfig): ...
    self.mixer = mixer_from_config(cfg, self.net, eng)
    self.model = compiled(cfg, self.model)            # in Task.setup(), after the mixer

The fields are `added_field`s: a config that leaves them alone keeps its hash (and its records, their rows).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import added_field
from .errors import ConfigError


@dataclass
class CompileConfig:
    compile: bool = added_field(False)   # torch.compile the model; eager when false
    compile_backend: str = added_field("inductor")   # torch.compile's backend (aot_eager: tracing and AOT autograd
    #                                                  without code generation, seconds instead of minutes on a CPU)


def compiled(cfg, model: nn.Module) -> nn.Module:
    """`model` wrapped by torch.compile when the config says compile=true; `model` itself otherwise."""
    if not getattr(cfg, "compile", False):
        return model
    from torch._dynamo import list_backends   # noqa: PLC0415  (seconds to import: only when compiling)

    known = list_backends(exclude_tags=())
    if cfg.compile_backend not in known:
        raise ConfigError(f"compile_backend {cfg.compile_backend!r} is not a torch.compile backend; "
                          f"one of: {', '.join(sorted(known))}")
    return torch.compile(model, backend=cfg.compile_backend)
