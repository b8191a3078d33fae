"""torch.compile keeps the mixing: build the mixer, then compile the model as usual; the compiled model gives the
eager losses and gradients step after step, and stops compiling new graphs once each layer of S was seen.

The hooks are registered once, when the mixer is built, and read the step's plan (mixsuite/mixing/hooks.py), so
the compiled code's guards see the same hooks every step; the layer is the one value they depend on. Every backend
is compiled with the `aot_eager` backend (dynamo's tracing and AOT autograd, where hooks matter, without inductor's
code generation, which would take minutes per backend on a 2-core CPU); inductor itself runs in the MLP test here
and on CutMix and ResizeMix in tests/test_compile_shaped.py.
"""
import pytest
import torch
from torch import nn
from torch._dynamo.utils import counters
from test_compile_shaped import assert_same_steps, sgd_steps

from mixsuite.mixing import ManifoldMixup, mixer_from_config, one_hot, soft_cross_entropy
from mixsuite.plugins.image.models import build_model
from mixsuite.plugins.image.task import ImageConfig

# every mixing backend (erm mixes nothing; patchup-hard is patchup's code with another mask rule): CI's time
BACKENDS = ["input", "manifold", "cutmix", "patchup", "nfm", "alignmix", "fmix", "resizemix"]


class OneGenerator:
    """What mixer_from_config asks of an engine: a seeded generator."""

    def generator(self, name):
        return torch.Generator().manual_seed(1)


def image_mixer(method, net):
    """The image task's mixer for `method` (its row of the method table: its paper's alpha, layers, options)."""
    cfg = ImageConfig(method=method)
    extra = {"image_size": (16, 16)} if cfg.mixing_backend() == "cutmix" else {}
    return mixer_from_config(cfg, net, OneGenerator(), **extra)


def train(method, compile_backend=None, steps=5, grad_steps=3):
    """Losses, layers, the number of compiled graphs after each step, and the gradients of the first `grad_steps`
    steps, of a tiny PreActResNet18."""
    torch.manual_seed(0)
    net = build_model("preactresnet18", 10, width=0.0625).train()
    mixer = image_mixer(method, net)
    model = torch.compile(net, backend=compile_backend) if compile_backend else net
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x, y = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1, 2, 3])
    losses, layers, graphs, grads = [], [], [], []
    for step in range(steps):
        with mixer.step(len(x), device=x.device) as plan:
            out = model(x)
        targets = plan.mix_targets(one_hot(y, 10)) if plan.active else one_hot(y, 10)
        loss = soft_cross_entropy(out, targets)
        loss.backward()
        if step < grad_steps:
            grads.append([p.grad.clone() for p in net.parameters()])
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        layers.append(plan.layer)
        graphs.append(counters["stats"]["unique_graphs"])
    return losses, layers, graphs, grads


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


WARM_UP, STEPS, CHECKED = 10, 18, 5


@pytest.mark.parametrize("method", BACKENDS)
def test_every_backend_compiled_gives_the_eager_losses_and_gradients_then_stops_compiling(method):
    """18 steps equal eager's (losses; gradients of the first 3); no new graph once the first 10 steps are done and
    every layer drawn was seen (the layer is the one value the guards depend on; the shaped backends' draws at the
    hook run eagerly, one graph break, and hand the compiled code tensors)."""
    eager, eager_layers, _, eager_grads = train(method, steps=STEPS)
    compiled, compiled_layers, graphs, compiled_grads = train(method, "aot_eager", steps=STEPS)
    assert compiled_layers == eager_layers                      # the same plans were drawn
    assert compiled == pytest.approx(eager, rel=1e-5, abs=1e-6)
    for step_e, step_c in zip(eager_grads, compiled_grads):
        for ge, gc in zip(step_e, step_c):
            assert torch.allclose(gc, ge, rtol=1e-4, atol=1e-6)
    seen_all = max(compiled_layers.index(layer) for layer in set(compiled_layers))
    warm = max(WARM_UP - 1, seen_all)
    assert warm <= STEPS - 1 - CHECKED, compiled_layers          # the seeded draws visit S early enough
    assert graphs[-1] == graphs[warm], (compiled_layers, graphs)  # no new graph after that
    if method in ("input", "manifold"):                          # no graph break: one graph a layer (and ERM's)
        assert graphs[-1] <= len(set(compiled_layers)) + 1
    if method != "erm":
        assert any(layer is not None for layer in compiled_layers)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Linear(6, 16), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Linear(16, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.layer2(self.layer1(x)))


def mlp_steps(compiled: bool):
    torch.manual_seed(0)
    net = MLP()
    mixer = ManifoldMixup(net, layers=["input", "layer1", "layer2"], alpha=2.0,
                          generator=torch.Generator().manual_seed(3))
    x, y = torch.randn(8, 6, generator=torch.Generator().manual_seed(4)), torch.arange(8) % 3
    return sgd_steps(net, mixer, compiled, x, y, n=4)


def test_inductor_compiled_manifold_mixup_gives_the_eager_losses_and_gradients():
    assert_same_steps(mlp_steps(False), mlp_steps(True))


def test_a_model_compiled_after_another_instance_of_its_class_still_mixes():
    """torch.compile keeps one cache for a class's forward: an instance compiled earlier without hooks must not lend
    its hook-less graph to a mixed one (building the mixer drops that cache)."""
    x = torch.randn(4, 6)
    torch.compile(MLP(), backend="aot_eager")(x)                  # another instance, no mixer, compiled first
    torch.manual_seed(0)
    net = MLP()
    mixer = ManifoldMixup(net, layers=["layer1"], alpha=1.0, generator=torch.Generator().manual_seed(5))
    compiled = torch.compile(net, backend="aot_eager")
    with mixer.step(len(x)) as plan:
        out = compiled(x)
    with mixer.apply(plan):
        eager = net(x)
    assert torch.allclose(out, eager)
