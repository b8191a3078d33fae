"""The shaped backends read tensors, not Python ints, in the compiled code (CutMix's box as corners, ResizeMix's
paste as a gather index): the same values as the slices they replace, bit for bit, in the input's memory format;
and inductor's compiled step gives the eager losses and gradients."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixsuite.mixing import build_mixer
from mixsuite.mixing.backends import CutMixPlan
from mixsuite.mixing.resizemix import ResizeMixPlan

LAYOUTS = [torch.contiguous_format, torch.channels_last]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("size", [16, 7])
def test_the_nearest_paste_is_the_slice_paste_bit_for_bit(layout, per_sample, size):
    g = torch.Generator().manual_seed(size)
    h = torch.randn(6, 3, size, size, generator=g).contiguous(memory_format=layout)
    tau = 0.1 + 0.7 * torch.rand(6 if per_sample else 1, generator=g)
    tau = tau if per_sample else tau[0]
    plan = ResizeMixPlan("input", 1 - tau ** 2, torch.randperm(6, generator=g), seed=11, tau=tau)
    again = ResizeMixPlan("input", plan.lam, plan.perm, seed=11, tau=tau)
    out = plan.mix(h)
    slices = again.mix_by_slices(h, h.index_select(0, plan.perm))
    assert torch.equal(out, slices)
    assert out.is_contiguous(memory_format=layout)
    assert torch.equal(plan.pixel_mask, again.pixel_mask) and torch.equal(plan.target_lam, again.target_lam)
    assert (plan.pixel_mask == 0).any()                        # something was pasted


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_the_cutmix_box_from_corners_is_the_slice(layout, dtype):
    h = (torch.rand(4, 3, 12, 12) * 200).to(dtype).contiguous(memory_format=layout)
    perm = torch.tensor([2, 0, 3, 1])
    plan = CutMixPlan("input", torch.tensor(0.5), perm, box=(3, 9, 1, 12))
    expected = h.clone()
    expected[:, :, 3:9, 1:12] = h[perm][:, :, 3:9, 1:12]
    out = plan.mix(h)
    assert torch.equal(out, expected) and out.dtype == dtype
    assert out.is_contiguous(memory_format=layout)
    mask = torch.ones(4, 1, 12, 12)
    mask[..., 3:9, 1:12] = 0
    assert torch.equal(plan.pixel_mask, mask)


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.stem(x).mean((2, 3)))


def sgd_steps(net, mixer, compiled: bool, x, y, n: int = 3):
    """(layer, loss, gradients) of `n` SGD steps of `net` mixed by `mixer`, run compiled (inductor) or eager."""
    model = torch.compile(net) if compiled else net                  # inductor, the default
    out = []
    for _ in range(n):
        net.zero_grad(set_to_none=True)
        with mixer.step(len(x)) as plan:
            logits = model(x)
        loss = plan.mix_loss(F.cross_entropy, logits, y)
        loss.backward()
        out.append((plan.layer, loss.item(), [p.grad.clone() for p in net.parameters()]))
        with torch.no_grad():
            for p in net.parameters():
                p -= 0.1 * p.grad
    return out


def assert_same_steps(eager, compiled):
    assert len(eager) == len(compiled)
    for (layer_e, loss_e, grads_e), (layer_c, loss_c, grads_c) in zip(eager, compiled):
        assert layer_c == layer_e
        assert loss_c == pytest.approx(loss_e, rel=1e-5)
        for ge, gc in zip(grads_e, grads_c):
            assert torch.allclose(gc, ge, rtol=1e-4, atol=1e-6)


def conv_steps(method, compiled):
    torch.manual_seed(0)
    net = ConvNet()
    extra = {"image_size": (8, 8)} if method == "cutmix" else {}
    mixer = build_mixer(method, net, alpha=1.0, generator=torch.Generator().manual_seed(3), **extra)
    x, y = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(4)), torch.tensor([0, 1, 2, 0])
    return sgd_steps(net, mixer, compiled, x, y)


@pytest.mark.parametrize("method", ["cutmix", "resizemix"])
def test_inductor_compiled_shaped_mixing_gives_the_eager_losses_and_gradients(method):
    torch._dynamo.reset()
    assert_same_steps(conv_steps(method, False), conv_steps(method, True))
    torch._dynamo.reset()
