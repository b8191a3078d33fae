"""Plans whose draws depend on the tensor they mix: a block mask, noise, a Fourier mask, a paste position.

The mixer cannot know the shape of layer k's output when it draws a plan, so it draws a `seed` from its own
generator with the rest of the plan, and the plan's first `mix(h)` draws the shape-dependent part from a
generator seeded with it. The mixer's stream therefore never depends on a layer's shape, and a forward run
twice (gradient checkpointing's recomputation) mixes the same way both times. What the targets' mix weighs,
`target_lam`, is known once the forward has run (the share of features a mask changed, a pasted area).

Under torch.compile the draws at the hook run eagerly (`eager_only`: a graph break, one per mixing layer) and
hand the compiled code tensors (a mask, a box's corners, a gather index), never the Python values drawn this
step, which its guards would compare and recompile on (the seed, a box's ints).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ..errors import UserError
from .plan import MixPlan

SEED_HIGH = 2 ** 62


class MixingShapeError(UserError, ValueError):
    """A backend met a tensor it cannot mix (e.g. a (B, F) vector where it needs a (B, C, H, W) map)."""


def eager_only(fn):
    """`fn` run eagerly when torch.compile traces its caller (a graph break; what `fn` reads is not guarded) and
    called as is otherwise. torch.compiler.disable is reached only while compiling: applied at import it would
    import torch._dynamo (two seconds) into every run."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        if torch.compiler.is_compiling():
            return torch.compiler.disable(fn)(*args, **kwargs)
        return fn(*args, **kwargs)
    return call


def box_inside(corners: torch.Tensor, size) -> torch.Tensor:
    """(G, 1, H, W) bool, True on the pixels of the slice [y0:y1, x0:x1] of box g, for `corners` (G, 4) of
    non-negative (y0, y1, x0, x1): a box from tensors, so compiled code does not guard on its ints."""
    h, w = size
    y0, y1, x0, x1 = (c.view(-1, 1, 1, 1) for c in corners.unbind(-1))
    rows = torch.arange(h, device=corners.device).view(1, 1, h, 1)
    cols = torch.arange(w, device=corners.device).view(1, 1, 1, w)
    return (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)


def draw_seed(generator: torch.Generator) -> int:
    return int(torch.randint(SEED_HIGH, (1,), generator=generator, device=generator.device))


def refuse_rows(rows, backend: str) -> None:
    if rows is not None:
        raise ValueError(f"the {backend!r} backend mixes every row of the batch; rows= (a subset) is not supported")


def feature_map(h: torch.Tensor, plan: MixPlan, backend: str) -> tuple[int, int, int, int]:
    """(B, C, H, W) of h, or an error naming the layer and the shape it gave."""
    if h.dim() != 4:
        raise MixingShapeError(
            f"{backend} mixes (B, C, H, W) feature maps, but mixing layer {plan.layer!r} outputs shape "
            f"{tuple(h.shape)}; choose convolutional layers (or 'input' for images) in the mixing layers")
    return tuple(h.shape)


@dataclass
class ShapedPlan(MixPlan):
    """A plan that draws the rest of its randomness at the hook, from `seed` (see the module docstring)."""

    seed: int = 0
    target_lam: torch.Tensor | None = None

    def rng(self, device) -> torch.Generator:
        """A fresh generator for this plan's shape-dependent draws; the same draws on every call."""
        return torch.Generator(device=device).manual_seed(self.seed)

    def weight(self) -> torch.Tensor:
        """The weight of each sample's own target (0-d or (B,)), once the forward has mixed."""
        if self.target_lam is None:
            raise RuntimeError(f"the targets' weight is known once the forward has passed mixing layer "
                               f"{self.layer!r}: call mix_targets / mix_loss after the model's forward")
        return self.target_lam

    def mix_by_weight(self, y: torch.Tensor) -> torch.Tensor:
        return MixPlan(self.layer, self.weight(), self.perm).mix(y)

    def loss_weight(self) -> torch.Tensor:
        return self.weight()


def rowwise(value: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """A scalar or per-row value (B,) broadcastable against h (B, ...), in h's dtype and device."""
    value = value.to(device=h.device, dtype=h.dtype)
    return value if value.dim() == 0 else value.view(-1, *([1] * (h.dim() - 1)))
