"""Manifold mixup under gradient checkpointing: the recomputation in backward mixes as the forward did, so the
gradients equal those of the run without checkpointing (timm's checkpoint_seq and torch.utils.checkpoint)."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mixsuite.mixing import ManifoldMixup, MixPlan, apply_plan


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def counting(plan):
    """The plan, with every call of its mix counted (forward and recomputations)."""
    calls = []
    mix = plan.mix
    plan.mix = lambda h: calls.append((plan.lam.clone(), plan.perm.clone())) or mix(h)
    return plan, calls


def train_step(model, x, y, plan):
    model.zero_grad(set_to_none=True)
    with apply_plan(model, plan, dict(model.named_modules())[plan.layer]):
        out = model(x)
    plan.mix_loss(F.cross_entropy, out, y).backward()
    return out.detach(), grads(model)


@pytest.fixture
def reentrant(request):
    import timm.layers.config as timm_config

    before = timm_config._USE_REENTRANT_CKPT
    timm_config.set_reentrant_ckpt(request.param)
    yield request.param
    timm_config.set_reentrant_ckpt(before)


@pytest.mark.parametrize("reentrant", [False, True], indirect=True, ids=["non-reentrant", "reentrant"])
@pytest.mark.parametrize("layer", ["layer2", "layer3.0"])
def test_timm_resnet_grad_checkpointing_mixes_the_recomputation_and_keeps_the_gradients(reentrant, layer):
    import timm

    torch.manual_seed(0)
    # resnet18's layout (stages of two blocks) at a narrow width; eval: BatchNorm stats do not move between runs
    plain = timm.create_model("resnet18", num_classes=5, channels=(8, 16, 32, 64), stem_width=8,
                              zero_init_last=False).eval()
    ckpt = copy.deepcopy(plain)
    ckpt.set_grad_checkpointing(True)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(5, (4,))
    lam, perm = torch.tensor(0.3), torch.tensor([2, 0, 3, 1])
    out_plain, g_plain = train_step(plain, x, y, MixPlan(layer, lam, perm))
    plan, calls = counting(MixPlan(layer, lam, perm))
    out_ckpt, g_ckpt = train_step(ckpt, x, y, plan)
    assert torch.allclose(out_ckpt, out_plain, atol=1e-5)
    assert g_plain.keys() == g_ckpt.keys() and len(g_plain) == len(list(plain.parameters()))
    for name in g_plain:
        assert torch.allclose(g_ckpt[name], g_plain[name], atol=1e-5, rtol=1e-4), name
    if reentrant:  # the segment ran twice, and both times mixed with the same lambda and pairs
        assert len(calls) == 2
        assert all(torch.equal(c[0], lam) and torch.equal(c[1], perm) for c in calls)


class Blocks(nn.Module):
    def __init__(self, use_checkpoint, reentrant=False):
        super().__init__()
        torch.manual_seed(1)
        self.stem = nn.Linear(6, 8)
        self.block = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8))
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(8, 3))
        self.use_checkpoint, self.reentrant = use_checkpoint, reentrant

    def forward(self, x):
        h = torch.relu(self.stem(x))
        if self.use_checkpoint:
            h = checkpoint(self.block, h, use_reentrant=self.reentrant)
        else:
            h = self.block(h)
        return self.head(h)


@pytest.mark.parametrize("reentrant", [False, True])
@pytest.mark.parametrize("layer", ["block", "block.1"])
@pytest.mark.parametrize("per_sample", [False, True])
def test_torch_checkpoint_around_a_block_gives_the_same_gradients(reentrant, layer, per_sample):
    x, y = torch.randn(8, 6), torch.randint(3, (8,))
    mixers = [ManifoldMixup(model, layers=[layer], alpha=1.0, per_sample=per_sample, generator=gen(4))
              for model in (Blocks(False), Blocks(True, reentrant))]
    results = []
    for mixer in mixers:
        torch.manual_seed(7)  # the same dropout masks
        with mixer.step(8) as plan:
            out = mixer.model(x)
        plan.mix_loss(lambda o, t: F.cross_entropy(o, t, reduction="none"), out, y).backward()
        results.append((out.detach(), grads(mixer.model), plan))
    (out_a, g_a, plan_a), (out_b, g_b, plan_b) = results
    assert torch.equal(plan_a.lam, plan_b.lam) and torch.equal(plan_a.perm, plan_b.perm)
    assert torch.allclose(out_a, out_b, atol=1e-6)
    assert g_a.keys() == g_b.keys() == {n for n, _ in mixers[0].model.named_parameters()}
    for name in g_a:
        assert torch.allclose(g_a[name], g_b[name], atol=1e-6), name


def test_after_the_step_a_forward_is_not_mixed():
    model = Blocks(True).eval()
    x = torch.randn(8, 6)
    mixer = ManifoldMixup(model, layers=["block"], alpha=1.0, generator=gen())
    with mixer.step(8):
        mixed = model(x)
    clean = model(x)
    with torch.no_grad():
        assert torch.equal(model(x), clean)
    assert not torch.allclose(mixed, clean)
    assert torch.equal(clean, Blocks(False).eval()(x))


def test_another_forward_before_the_recomputation_is_refused():
    model = Blocks(True, reentrant=True)
    x, y = torch.randn(8, 6), torch.randint(3, (8,))
    mixer = ManifoldMixup(model, layers=["block"], alpha=1.0, generator=gen())
    with mixer.step(8) as plan:
        out = model(x)
    loss = plan.mix_loss(F.cross_entropy, out, y) + F.cross_entropy(model(x), y)
    with pytest.raises(RuntimeError, match="call backward before that forward"):
        loss.backward()


def test_a_model_with_lingering_hooks_can_be_freed():
    import gc
    import weakref

    model = Blocks(False)
    mixer = ManifoldMixup(model, layers=["block"], alpha=1.0, generator=gen())
    with mixer.step(8):
        model(torch.randn(8, 6))
    ref = weakref.ref(model)
    del model, mixer
    gc.collect()
    assert ref() is None


def test_a_step_that_does_not_mix_clears_the_previous_steps_hooks():
    """A checkpointed model trained by a mixing step, then an unmixed one (ERM, or a step that mix_prob skips):
    the unmixed step's recomputation is not mixed and not refused."""
    from mixsuite.mixing import build_mixer

    model, x, y = Blocks(True, reentrant=True), torch.randn(8, 6), torch.randint(3, (8,))
    with ManifoldMixup(model, layers=["block"], alpha=1.0, generator=gen()).step(8) as plan:
        out = model(x)
    plan.mix_loss(F.cross_entropy, out, y).backward()
    model.zero_grad()
    erm = build_mixer("erm", model)   # before seeding: a mixer without a generator draws its seed from torch's RNG
    torch.manual_seed(5)  # the same dropout masks
    with erm.step(8):
        out = model(x)
    F.cross_entropy(out, y).backward()
    plain = Blocks(False)
    plain.load_state_dict(model.state_dict())
    torch.manual_seed(5)
    F.cross_entropy(plain(x), y).backward()
    for (name, p), q in zip(model.named_parameters(), plain.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name
