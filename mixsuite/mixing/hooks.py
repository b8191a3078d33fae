"""Apply a MixPlan to any nn.Module without rewriting it: a forward hook on the module named k
(a forward pre-hook on the root for "input") replaces its output h with plan.mix(h).

Gradient checkpointing (torch.utils.checkpoint, timm's `set_grad_checkpointing`) runs a segment's forward again
during backward. Two things follow, both handled here:
- timm's `checkpoint_seq(..., flatten=True)` calls the blocks of a stage one by one, never the stage itself, so a
  hook on `layer2` (an nn.Sequential) would never fire; its last block's output is the stage's output, so the
  last block is hooked too and mixes when it runs outside the stage;
- the recomputation happens after the `with mixer.step()` block, usually: a step's hooks stay on the model until
  its next plan and, while autograd runs a backward, mix the recomputed forward with the same plan (same
  lambda, same pairs), so the gradients equal those of the run without checkpointing. Outside a backward they
  let every forward pass untouched.
"""
from __future__ import annotations

import weakref
from contextlib import contextmanager

import torch
from torch import nn

from ..errors import UserError
from ..registry import nearest
from .plan import MixPlan

INPUT = "input"


class MixingLayerError(UserError, ValueError):
    """A name in S that is not a module of the model, or a tensor there that cannot be interpolated: a config
    error (mix_layers), exit code 2."""

    exit_code = 2


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
            shown = ", ".join(valid[:30]) + (f", ... ({len(valid)} in all)" if len(valid) > 30 else "")
            hint = (f"nearest: {', '.join(close)}; " if close else "") + f"layers available: {shown}"
            raise MixingLayerError(f"mixing layer {name!r} is not a module of {type(model).__name__}; {hint}")
    return resolved


def _select(output, index):
    if isinstance(output, torch.Tensor):
        return output
    if index is None:
        raise MixingLayerError(f"the hooked module returns {type(output).__name__}; set output_index to pick the "
                               "tensor to mix (e.g. output_index=0)")
    return output[index]


def _replace(output, index, value):
    if isinstance(output, torch.Tensor):
        return value
    items = list(output)
    items[index] = value
    return type(output)(items) if isinstance(output, tuple) else items


def _check_floating(h: torch.Tensor, model: nn.Module, layer: str) -> None:
    if h.is_floating_point() or h.is_complex():
        return
    if layer == INPUT:
        embeddings = [n for n, m in model.named_modules() if isinstance(m, nn.Embedding)]
        hint = (f"name the embedding module instead, e.g. layers=[{embeddings[0]!r}]" if embeddings else
                "name the module that embeds them instead (its output is a float tensor)")
        raise MixingLayerError(f"the input of {type(model).__name__} is an integer tensor ({h.dtype}, token ids?) "
                               f"that cannot be interpolated; {hint}")
    raise MixingLayerError(f"mixing layer {layer!r} returns an integer tensor ({h.dtype}) that cannot be interpolated; "
                           "name a module whose output is a float tensor")


def output_points(module: nn.Module) -> list[nn.Module]:
    """`module` and the modules whose output is its output when a caller runs its children itself: for a plain
    nn.Sequential its last child, recursively (timm's checkpoint_seq(flatten=True) runs the children)."""
    points = [module]
    while type(points[-1]).forward is nn.Sequential.forward and len(points[-1]) > 0:
        points.append(points[-1][-1])
    return points


def _in_backward() -> bool:
    """True while autograd runs a backward: a forward then is gradient checkpointing recomputing a segment."""
    return torch._C._current_graph_task_id() != -1


class _Hooks:
    """The hooks of one applied plan. `live` inside the `with` block; afterwards they mix only recomputations."""

    def __init__(self, model: nn.Module, plan: MixPlan, module: nn.Module, output_index):
        # a weak reference: these hooks are the value of a WeakKeyDictionary keyed by the model
        self.model, self.plan, self.output_index = weakref.ref(model), plan, output_index
        self.live, self.fired, self.depth, self.other_forwards = True, 0, 0, 0
        self.handles = []
        if plan.layer == INPUT:
            self.handles.append(module.register_forward_pre_hook(self._pre_hook_input, with_kwargs=True))
        else:
            for point in output_points(module):
                self.handles.append(point.register_forward_pre_hook(self._enter))
                self.handles.append(point.register_forward_hook(self._leave, always_call=True))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def _should_mix(self) -> bool:
        if _in_backward():
            if not self.live and self.other_forwards:
                raise RuntimeError(
                    f"gradient checkpointing recomputes mixing layer {self.plan.layer!r}, and the model ran "
                    "another forward after the mixing step: which recomputation to mix cannot be told apart; "
                    "call backward before that forward, or run it before `mixer.step()`")
            return True
        if not self.live:
            self.other_forwards += 1
            return False
        self.fired += 1
        if self.fired > 1:
            raise RuntimeError(
                f"mixing layer {self.plan.layer!r} ran twice in one mixing step; hook a module that runs once per "
                "forward, or call the model once inside `mixer.step()`")
        return True

    def _mix(self, value):
        h = _select(value, self.output_index)
        if type(self.plan).mix is MixPlan.mix:  # interpolation (a plan that pastes, as CutMix, takes integers too)
            _check_floating(h, self.model(), self.plan.layer)
        return _replace(value, self.output_index, self.plan.mix(h))

    def _pre_hook_input(self, mod, args, kwargs):
        if not self._should_mix():
            return None
        if args:
            return (self._mix(args[0]), *args[1:]), kwargs
        key = next(iter(kwargs))
        kwargs = dict(kwargs)
        kwargs[key] = self._mix(kwargs[key])
        return args, kwargs

    def _enter(self, mod, args):
        self.depth += 1

    def _leave(self, mod, args, output):
        self.depth -= 1
        if self.depth > 0 or output is None:  # an inner point (the stage's last block) inside the stage's own
            return None                       # call; or the forward raised (the hook is always called)
        return self._mix(output) if self._should_mix() else None


_LINGERING: "weakref.WeakKeyDictionary[nn.Module, _Hooks]" = weakref.WeakKeyDictionary()


@contextmanager
def apply_plan(model: nn.Module, plan: MixPlan, module: nn.Module | None = None, output_index: int | None = None):
    """Within the block, the first forward through `module` (or the model input) is mixed by `plan`.

    Raises if the module runs twice (it would be mixed twice) or never runs (the layer name does not lie on
    the forward path). The hooks stay until the model's next plan, for gradient checkpointing (module docstring).
    """
    previous = _LINGERING.pop(model, None)
    if previous is not None:
        previous.remove()
    if not plan.active:
        yield plan
        return
    hooks = _Hooks(model, plan, model if module is None else module, output_index)
    try:
        yield plan
    except BaseException:
        hooks.remove()
        raise
    hooks.live = False
    if hooks.fired == 0:
        hooks.remove()
        raise RuntimeError(
            f"the forward never reached mixing layer {plan.layer!r}; check that it lies on the model's forward path")
    _LINGERING[model] = hooks


def release(model: nn.Module) -> None:
    """Remove the hooks the model's last plan left for recomputation (the next plan does it too)."""
    hooks = _LINGERING.pop(model, None)
    if hooks is not None:
        hooks.remove()
