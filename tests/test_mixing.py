"""The mixing core: lambda draws, pairings, hooks on any module, backends, mixed losses."""
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixsuite.mixing import (CutMix, ManifoldMixup, MixPlan, bce_on_softmax, build_mixer, mixed_ctc_loss,
                             mixed_loss, one_hot, sample_lambda, sample_permutation, soft_cross_entropy)
from mixsuite.mixing.hooks import MixingLayerError, apply_plan
from mixsuite.mixing.interpolation import inverse_permutation, mix_rows


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.0])
def test_lambda_moments_match_beta(alpha):
    lam = sample_lambda(alpha, 200_000, generator=gen(1)).double()
    var = 1.0 / (4 * (2 * alpha + 1))  # Var of Beta(a, a)
    assert abs(lam.mean().item() - 0.5) < 0.005
    assert abs(lam.var().item() - var) < 0.02 * var + 1e-4
    assert lam.min() >= 0 and lam.max() <= 1


@pytest.mark.parametrize("alpha", [0.05, 0.2, 1 / 3, 0.5, 1.0, 2.0, 4.0])
def test_one_lambda_in_python_floats_is_the_tensor_loops_draw(alpha):
    from mixsuite.mixing.sampling import _one_standard_gamma, _standard_gamma_tensor
    fast, loop = gen(5), gen(5)
    one = [torch.tensor([_one_standard_gamma(alpha, fast)[0]], dtype=torch.float64) for _ in range(3000)]
    ref = [_standard_gamma_tensor(alpha, 1, loop)[0] for _ in range(3000)]
    assert torch.equal(torch.cat(one), torch.cat(ref))     # bit for bit: the records' lambdas are unchanged
    assert torch.equal(fast.get_state(), loop.get_state())  # and the generator is left where the loop left it


def test_lambda_alpha_zero_is_one_and_fold():
    assert torch.equal(sample_lambda(0.0, 5, generator=gen()), torch.ones(5))
    folded = sample_lambda(1.0, 1000, generator=gen(), fold=True)
    assert folded.min() >= 0.5


def test_same_seed_same_plan():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    plans = []
    for _ in range(2):
        m = ManifoldMixup(model, layers=["input", "0", "1"], alpha=2.0, generator=gen(7))
        plans.append([m.draw(16) for _ in range(5)])
    for a, b in zip(*plans):
        assert a.layer == b.layer and torch.equal(a.lam, b.lam) and torch.equal(a.perm, b.perm)
    other = ManifoldMixup(model, layers=["input", "0", "1"], alpha=2.0, generator=gen(8)).draw(16)
    assert not torch.equal(other.perm, plans[0][0].perm) or not torch.equal(other.lam, plans[0][0].lam)


def test_a_mixer_without_a_generator_follows_torch_manual_seed():
    """No fixed default seed: the global seed decides the plans (same seed, same plans; another, other plans)."""
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))

    def plans(seed):
        torch.manual_seed(seed)
        mixer = ManifoldMixup(model, layers=["input", "0", "1"], alpha=2.0)
        return [(p.layer, p.lam.item(), p.perm.tolist()) for p in (mixer.draw(16) for _ in range(4))]

    assert plans(1) == plans(1)
    assert plans(1) != plans(2)

def test_permutation_within_rows():
    rows = torch.tensor([1, 4, 5, 8])
    perm = sample_permutation(10, generator=gen(), rows=rows)
    others = torch.tensor([i for i in range(10) if i not in rows.tolist()])
    assert torch.equal(perm[others], others)
    assert sorted(perm[rows].tolist()) == rows.tolist()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(5, 6)
        self.b = nn.Linear(6, 3)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


@pytest.mark.parametrize("per_sample", [False, True])
def test_hooked_output_equals_formula(per_sample):
    torch.manual_seed(0)
    net, x = Net(), torch.randn(8, 5)
    mixer = ManifoldMixup(net, layers=["a"], alpha=1.0, per_sample=per_sample, generator=gen(3))
    with mixer.step(8) as plan:
        out = net(x)
    h = net.a(x)
    lam = plan.lam.view(-1, 1) if per_sample else plan.lam
    expected = net.b(torch.relu(lam * h + (1 - lam) * h[plan.perm]))
    assert torch.allclose(out, expected, atol=1e-6)
    assert plan.lam.shape == ((8,) if per_sample else ())


def test_input_mixing_and_rows_subset():
    net, x = Net(), torch.randn(6, 5)
    rows = torch.tensor([0, 2, 3])
    plan = MixPlan("input", torch.tensor(0.3), torch.tensor([3, 1, 0, 2, 4, 5]), rows)
    with apply_plan(net, plan):
        out = net(x)
    xm = x.clone()
    xm[rows] = 0.3 * x[rows] + 0.7 * x[torch.tensor([3, 0, 2])]
    assert torch.allclose(out, net(xm), atol=1e-6)
    assert torch.equal(out[[1, 4, 5]], net(x)[[1, 4, 5]])  # untouched rows are exactly ERM


def test_gradients_reach_layers_below_k():
    net, x = Net(), torch.randn(8, 5)
    mixer = ManifoldMixup(net, layers=["a"], alpha=1.0, generator=gen())
    with mixer.step(8) as plan:
        out = net(x)
    plan.mix_loss(F.cross_entropy, out, torch.randint(3, (8,))).backward()
    assert net.a.weight.grad is not None and net.a.weight.grad.abs().sum() > 0


def test_lam_one_reproduces_erm_exactly():
    torch.manual_seed(0)
    net, x, y = Net(), torch.randn(8, 5), torch.randint(3, (8,))
    plan = MixPlan("a", torch.tensor(1.0), torch.randperm(8))
    with apply_plan(net, plan, net.a):
        out = net(x)
    assert torch.equal(out, net(x))
    assert torch.equal(plan.mix_loss(F.cross_entropy, out, y), F.cross_entropy(net(x), y))
    erm = build_mixer("erm", net)
    with erm.step(8) as p:
        assert not p.active
        out2 = net(x)
    assert torch.equal(out2, net(x))


def test_layer_errors():
    net = Net()
    with pytest.raises(MixingLayerError, match="nearest: a"):
        ManifoldMixup(net, layers=["aa"], alpha=1.0)
    twice = nn.Sequential(nn.Linear(2, 2))
    mixer = ManifoldMixup(twice, layers=["0"], alpha=1.0)
    with pytest.raises(RuntimeError, match="ran twice"):
        with mixer.step(4):
            twice(twice(torch.randn(4, 2)))
    never = ManifoldMixup(net, layers=["b"], alpha=1.0)
    with pytest.raises(RuntimeError, match="never reached"):
        with never.step(4):
            net.a(torch.randn(4, 5))


def test_tuple_output_selector():
    class Pair(nn.Module):
        def forward(self, x):
            return x * 2, x.sum()

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = Pair()

        def forward(self, x):
            return self.p(x)[0]

    m, x = M(), torch.randn(4, 3)
    mixer = ManifoldMixup(m, layers=["p"], alpha=1.0, output_index=0, generator=gen())
    with mixer.step(4) as plan:
        out = m(x)
    assert torch.allclose(out, plan.lam * 2 * x + (1 - plan.lam) * 2 * x[plan.perm])


def test_cutmix_lambda_is_box_area():
    x = torch.randn(4, 3, 16, 16)
    net = nn.Identity()
    mixer = CutMix(net, alpha=1.0, image_size=(16, 16), generator=gen(2))
    with mixer.step(4) as plan:
        out = net(x)
    y0, y1, x0, x1 = plan.box
    area = (y1 - y0) * (x1 - x0) / 256
    assert abs(plan.lam.item() - (1 - area)) < 1e-6
    changed = (out != x).any(dim=1)
    assert changed[:, y0:y1, x0:x1].float().mean() > 0 or torch.equal(plan.perm, torch.arange(4))
    mask = torch.ones(16, 16, dtype=torch.bool)
    mask[y0:y1, x0:x1] = False
    assert torch.equal(out[:, :, mask], x[:, :, mask])


def test_unknown_backend_suggests():
    with pytest.raises(KeyError, match="manifold"):
        build_mixer("manifod", Net())


def test_mixed_ce_equals_ce_on_mixed_soft_targets():
    torch.manual_seed(0)
    logits, ya, yb = torch.randn(6, 4), torch.randint(4, (6,)), torch.randint(4, (6,))
    lam = 0.37
    a = mixed_loss(F.cross_entropy, logits, ya, yb, lam)
    b = soft_cross_entropy(logits, lam * one_hot(ya, 4) + (1 - lam) * one_hot(yb, 4))
    assert torch.allclose(a, b, atol=1e-6)
    lam_vec = torch.rand(6)
    c = mixed_loss(partial(F.cross_entropy, reduction="none"), logits, ya, yb, lam_vec)
    t = lam_vec[:, None] * one_hot(ya, 4) + (1 - lam_vec[:, None]) * one_hot(yb, 4)
    assert torch.allclose(c, soft_cross_entropy(logits, t), atol=1e-6)
    with pytest.raises(ValueError, match="per sample"):
        mixed_loss(F.cross_entropy, logits, ya, yb, lam_vec)


def test_label_smoothing_and_bce_on_softmax():
    t = one_hot(torch.tensor([1]), 4, smoothing=0.1)
    assert torch.allclose(t, torch.tensor([[0.025, 0.925, 0.025, 0.025]]))
    logits, target = torch.randn(3, 4), torch.softmax(torch.randn(3, 4), -1)
    expected = nn.BCELoss()(F.softmax(logits, -1), target)
    assert torch.allclose(bce_on_softmax(logits, target), expected, atol=1e-6)


def _ctc_case():
    torch.manual_seed(0)
    T, B, C = 12, 3, 6
    log_probs = torch.randn(T, B, C, dtype=torch.float64).log_softmax(-1).requires_grad_()
    ta, la = torch.randint(1, C, (B, 5)), torch.tensor([5, 3, 4])
    tb, lb = torch.randint(1, C, (B, 4)), torch.tensor([2, 4, 1])
    lens = torch.tensor([12, 10, 11])
    return log_probs, ta, la, tb, lb, lens


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mixed_ctc_is_weighted_sum_of_two_ctc(reduction):
    log_probs, ta, la, tb, lb, lens = _ctc_case()
    lam = 0.3
    got = mixed_ctc_loss(log_probs, ta, la, tb, lb, lens, lam, reduction=reduction)
    want = lam * F.ctc_loss(log_probs, ta, lens, la, reduction=reduction) + \
        (1 - lam) * F.ctc_loss(log_probs, tb, lens, lb, reduction=reduction)
    assert torch.allclose(got, want, atol=1e-9)
    one = mixed_ctc_loss(log_probs, ta, la, tb, lb, lens, 1.0, reduction=reduction)
    assert torch.allclose(one, F.ctc_loss(log_probs, ta, lens, la, reduction=reduction), atol=1e-12)


def test_mixed_ctc_per_sample_lambda_and_gradcheck():
    log_probs, ta, la, tb, lb, lens = _ctc_case()
    lam = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    got = mixed_ctc_loss(log_probs, ta, la, tb, lb, lens, lam, reduction="none")
    a = F.ctc_loss(log_probs, ta, lens, la, reduction="none")
    b = F.ctc_loss(log_probs, tb, lens, lb, reduction="none")
    assert torch.allclose(got, lam * a + (1 - lam) * b, atol=1e-9)
    logits = torch.randn(8, 2, 4, dtype=torch.float64, requires_grad=True)
    fn = lambda z: mixed_ctc_loss(z.log_softmax(-1), torch.tensor([[1, 2], [3, 3]]), torch.tensor([2, 2]),
                                  torch.tensor([[2, 1], [1, 0]]), torch.tensor([2, 1]), torch.tensor([8, 7]), 0.4)
    assert torch.autograd.gradcheck(fn, (logits,))


@pytest.mark.parametrize("lam_shape", [(), (6, 1, 1)])
def test_fused_mix_rows_matches_the_formula_and_its_gradient(lam_shape):
    torch.manual_seed(0)
    h = torch.randn(6, 3, 4, dtype=torch.float64, requires_grad=True)
    perm = torch.tensor([2, 0, 1, 5, 3, 4])
    lam = torch.rand(lam_shape, dtype=torch.float64)
    inverse = inverse_permutation(perm)
    assert torch.equal(inverse[perm], torch.arange(6))
    out = mix_rows(h, perm, lam, inverse)
    assert torch.allclose(out, lam * h + (1 - lam) * h[perm], atol=1e-12)
    g = torch.randn_like(out)
    (fused,) = torch.autograd.grad(out, h, g)
    (plain,) = torch.autograd.grad(lam * h + (1 - lam) * h[perm], h, g)
    assert torch.allclose(fused, plain, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: mix_rows(t, perm, lam, inverse), (h,))


@pytest.mark.parametrize("lam_shape", [(), (6, 1, 1, 1)])
def test_fused_mix_rows_keeps_a_channels_last_layout(lam_shape):
    """A channels_last map stays channels_last through the mix and its gradient (else every conv after the mixing
    layer converts back), with the formula's values."""
    torch.manual_seed(0)
    h = torch.randn(6, 3, 4, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    perm = torch.tensor([2, 0, 1, 5, 3, 4])
    lam = torch.rand(lam_shape)
    out = mix_rows(h, perm, lam, inverse_permutation(perm))
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    assert torch.allclose(out, lam * h + (1 - lam) * h[perm], atol=1e-6)
    g = torch.randn(6, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    (fused,) = torch.autograd.grad(out, h, g)
    (plain,) = torch.autograd.grad(lam * h + (1 - lam) * h[perm], h, g)
    assert fused.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(fused, plain, atol=1e-6)


def test_pairing_that_is_not_a_permutation_takes_the_plain_path():
    perm = torch.tensor([1, 1, 0, 2])                     # row 1 is everybody's partner: no inverse
    assert inverse_permutation(perm) is None
    h = torch.randn(4, 3, requires_grad=True)
    plan = MixPlan("a", torch.tensor(0.25), perm)
    out = plan.mix(h)
    out.sum().backward()
    assert torch.allclose(out, 0.25 * h + 0.75 * h[perm])
    assert torch.allclose(h.grad[:, 0], torch.tensor([0.25 + 0.75, 0.25 + 1.5, 0.25 + 0.75, 0.25]))
