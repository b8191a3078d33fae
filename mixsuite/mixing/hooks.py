"""Apply a MixPlan to any nn.Module without rewriting it: a forward hook on the module named k
(a forward pre-hook on the root for "input") replaces its output h with plan.mix(h).

Gradient checkpointing (torch.utils.checkpoint, timm's `set_grad_checkpointing`) runs a segment's forward again
during backward. Two things follow, both handled here:
- timm's `checkpoint_seq(..., flatten=True)` calls the blocks of a stage one by one, never the stage itself, so a
  hook on `layer2` (an nn.Sequential) would never fire; its last block's output is the stage's output, so the
  last block is hooked too and mixes when it runs outside the stage;
- the recomputation happens after the `with mixer.step()` block, usually: a step stays the model's current one
  until its next plan and, while autograd runs a backward, its hooks mix the recomputed forward with the same plan
  (same lambda, same pairs), so the gradients equal those of the run without checkpointing. Outside a backward
  they let every forward pass untouched.

The hooks are registered once per module and kept (`_Router`): a step only changes what they read, so
torch.compile, which guards on a module's hooks, keeps its compiled code from step to step.
"""
from __future__ import annotations

import sys
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


class _Router:
    """The mixing hooks of one model, registered once per hooked module and then kept: each reads the current
    step's plan from here. A step changes this object's fields, never the model's hooks, so a model compiled with
    torch.compile sees the same hooks every step and recompiles only for a layer of S it has not seen yet (the
    target module is the one value its guards depend on; lambda and the pairing are tensors).

    During a step (`live`) the first forward through the target module is mixed; after it the step lingers
    until the model's next plan and mixes only forwards run inside a backward (gradient checkpointing)."""

    def __init__(self, model: nn.Module):
        self.model = weakref.ref(model)   # the router is reachable from the model's hooks: no cycle through it
        self.hooked: dict[int, list] = {}   # id(module) -> its hook handles
        self.plan: MixPlan | None = None
        self.points: tuple[nn.Module, ...] = ()
        self.output_index = None
        self.live, self.fired, self.depth, self.other_forwards = False, 0, 0, 0

    def hook(self, module: nn.Module, is_input: bool) -> tuple[nn.Module, ...]:
        """Register the hooks of `module` once (the input's pre-hook on the model itself); its output points."""
        points = (module,) if is_input else tuple(output_points(module))
        for point in points:
            key = (id(point), is_input)
            if key in self.hooked:
                continue
            if is_input:
                self.hooked[key] = [point.register_forward_pre_hook(self._pre_hook_input, with_kwargs=True)]
            else:
                self.hooked[key] = [point.register_forward_pre_hook(self._enter),
                                    point.register_forward_hook(self._leave, always_call=True)]
        return points

    def start(self, plan: MixPlan, points: tuple[nn.Module, ...], output_index) -> None:
        plan.prepare()
        self.plan, self.points, self.output_index = plan, points, output_index
        self.live, self.fired, self.depth, self.other_forwards = True, 0, 0, 0

    def clear(self) -> None:
        self.plan, self.points, self.live = None, (), False

    def remove(self) -> None:
        for handles in self.hooked.values():
            for handle in handles:
                handle.remove()
        self.hooked = {}
        self.clear()

    def _targets(self, mod: nn.Module, is_input: bool) -> bool:
        plan = self.plan
        if plan is None or (plan.layer == INPUT) != is_input:
            return False
        return any(mod is point for point in self.points)

    def _should_mix(self) -> bool:
        if not torch.compiler.is_compiling() and _in_backward():
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
        if not self._targets(mod, True) or not self._should_mix():
            return None
        if args:
            return (self._mix(args[0]), *args[1:]), kwargs
        key = next(iter(kwargs))
        kwargs = dict(kwargs)
        kwargs[key] = self._mix(kwargs[key])
        return args, kwargs

    def _enter(self, mod, args):
        if self._targets(mod, False):
            self.depth += 1

    def _leave(self, mod, args, output):
        if not self._targets(mod, False):
            return None
        self.depth -= 1
        if self.depth > 0 or output is None:  # an inner point (the stage's last block) inside the stage's own
            return None                       # call; or the forward raised (the hook is always called)
        return self._mix(output) if self._should_mix() else None


_ROUTERS: "weakref.WeakKeyDictionary[nn.Module, _Router]" = weakref.WeakKeyDictionary()


def router(model: nn.Module) -> _Router:
    """The model's one router (made on first use)."""
    found = _ROUTERS.get(model)
    if found is None:
        found = _ROUTERS[model] = _Router(model)
    return found


def register_hooks(model: nn.Module, modules: dict[str, nn.Module]) -> None:
    """Hook every layer of S now (a mixer does it when built), so a model compiled afterwards has all its hooks."""
    r = router(model)
    for name, module in modules.items():
        r.hook(module, name == INPUT)
    forget_compiled(model)


def forget_compiled(model: nn.Module) -> None:
    """Drop the code torch.compile keeps for the model's forward: it is shared by every instance of the class, and
    an instance compiled before without hooks would otherwise lend this one its hook-less graph (the mixing layer
    never reached). The next compiled call traces again, with the hooks."""
    dynamo = sys.modules.get("torch._dynamo")   # not imported: nothing was compiled (importing it costs seconds)
    code = getattr(type(model).forward, "__code__", None)
    if dynamo is not None and code is not None and hasattr(dynamo, "reset_code"):
        dynamo.reset_code(code)


@contextmanager
def apply_plan(model: nn.Module, plan: MixPlan, module: nn.Module | None = None, output_index: int | None = None):
    """Within the block, the first forward through `module` (or the model input) is mixed by `plan`.

    Raises if the module runs twice (it would be mixed twice) or never runs (the layer name does not lie on
    the forward path). The step lingers until the model's next plan, for gradient checkpointing (module docstring).
    """
    r = router(model)
    r.clear()
    if not plan.active:
        yield plan
        return
    is_input = plan.layer == INPUT
    r.start(plan, r.hook(model if module is None else module, is_input), output_index)
    try:
        yield plan
    except BaseException:
        r.clear()
        raise
    r.live = False
    if r.fired == 0:
        r.clear()
        raise RuntimeError(
            f"the forward never reached mixing layer {plan.layer!r}; check that it lies on the model's forward path")


def release(model: nn.Module) -> None:
    """Remove every mixing hook from the model (a later plan registers what it needs again)."""
    found = _ROUTERS.pop(model, None)
    if found is not None:
        found.remove()
