"""Apply a MixPlan to any nn.Module without rewriting it: a forward hook on the module named k
(a forward pre-hook on the root for "input") replaces its output h with plan.mix(h)."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from ..errors import UserError
from ..registry import nearest
from .plan import MixPlan

INPUT = "input"


class MixingLayerError(UserError, ValueError):
    """A name in S that is not a module of the model."""


def resolve_layers(model: nn.Module, names) -> dict[str, nn.Module]:
    """Map each name of S to its module ("input" maps to the model itself). Unknown names fail with the nearest."""
    modules = dict(model.named_modules())
    resolved = {}
    for name in names:
        if name == INPUT:
            resolved[name] = model
        elif name in modules and name != "":
            resolved[name] = modules[name]
        else:
            valid = [n for n in modules if n] + [INPUT]
            close = nearest(name, valid, n=5)
            hint = f"nearest: {', '.join(close)}" if close else f"some valid names: {', '.join(valid[:10])}"
            raise MixingLayerError(f"mixing layer {name!r} is not a module of {type(model).__name__}; {hint}")
    return resolved


def _select(output, index):
    if isinstance(output, torch.Tensor):
        return output
    if index is None:
        raise TypeError(f"the hooked module returns {type(output).__name__}; set output_index to pick the tensor to mix")
    return output[index]


def _replace(output, index, value):
    if isinstance(output, torch.Tensor):
        return value
    items = list(output)
    items[index] = value
    return type(output)(items) if isinstance(output, tuple) else items


@contextmanager
def apply_plan(model: nn.Module, plan: MixPlan, module: nn.Module | None = None, output_index: int | None = None):
    """Within the block, the first forward through `module` (or the model input) is mixed by `plan`.

    Raises if the module runs twice (it would be mixed twice) or never runs (the layer name does not lie on
    the forward path).
    """
    if not plan.active:
        yield plan
        return
    module = model if module is None else module
    fired = [0]

    def count():
        fired[0] += 1
        if fired[0] > 1:
            raise RuntimeError(
                f"mixing layer {plan.layer!r} ran twice in one mixing step; hook a module that runs once per "
                "forward, or call the model once inside `mixer.step()`")

    if plan.layer == INPUT:
        def pre_hook(mod, args, kwargs):
            count()
            if args:
                return (_replace(args[0], output_index, plan.mix(_select(args[0], output_index))), *args[1:]), kwargs
            key = next(iter(kwargs))
            kwargs = dict(kwargs)
            kwargs[key] = plan.mix(kwargs[key])
            return args, kwargs

        handle = module.register_forward_pre_hook(pre_hook, with_kwargs=True)
    else:
        def hook(mod, args, output):
            count()
            return _replace(output, output_index, plan.mix(_select(output, output_index)))

        handle = module.register_forward_hook(hook)
    try:
        yield plan
    finally:
        handle.remove()
    if fired[0] == 0:
        raise RuntimeError(
            f"the forward never reached mixing layer {plan.layer!r}; check that it lies on the model's forward path")
