"""Draws where the batch is: a mixer draws lambda and pairings on the batch's device from a generator there
(`Mixer.generator_on`), and a CPU run keeps its one generator and its exact stream (the committed records)."""
import math

import pytest
import torch
from torch import nn

from mixsuite.mixing import build_mixer
from mixsuite.mixing.sampling import beta_by_standard_gamma, sample_beta, sample_lambda

BACKENDS = ["input", "manifold", "patchup", "nfm", "alignmix", "fmix", "resizemix", "cutmix"]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))


def mixer(method, seed=7):
    extra = {"image_size": (8, 8)} if method == "cutmix" else {}
    layers = ["input"] if method in ("input", "fmix", "resizemix", "cutmix") else ["input", "conv"]
    return build_mixer(method, Net(), alpha=1.5, layers=layers, generator=torch.Generator().manual_seed(seed), **extra)


def plan_values(plan):
    return [plan.layer, plan.lam, plan.perm] + [getattr(plan, k) for k in ("seed", "tau", "mult_scale", "add_scale",
                                                                           "direction", "box") if hasattr(plan, k)]


@pytest.mark.parametrize("method", BACKENDS)
def test_a_cpu_batch_draws_from_the_mixer_generator_as_before(method):
    """device='cpu' (what a task passes, x.device) draws exactly what device=None does, from the one generator."""
    a, b = mixer(method), mixer(method)
    for _ in range(6):
        pa, pb = a.draw(6), b.draw(6, device=torch.device("cpu"))
        for va, vb in zip(plan_values(pa), plan_values(pb)):
            assert torch.equal(va, vb) if isinstance(va, torch.Tensor) else va == vb
    assert b.generator_on(torch.device("cpu")) is b.generator and b.device_generators == {}
    assert set(b.state_dict()) == {"generator"}           # a CPU run's checkpoint holds what it held before
    assert torch.equal(a.generator.get_state(), b.generator.get_state())


def old_draws(method, g, batch):
    """One plan's draws as the code before device generators made them: layer, lambda, permutation from the one
    CPU generator in that order (NFM then its two noise levels and the seed)."""
    out = {"layer": ["input", "conv"][int(torch.randint(2, (1,), generator=g))],
           "lam": sample_lambda(1.5, 1, generator=g)[0], "perm": torch.randperm(batch, generator=g)}
    if method == "nfm":
        out["mult_scale"], out["add_scale"] = sample_beta(2.0, 5.0, 1, generator=g)[0], sample_beta(2.0, 5.0, 1,
                                                                                                     generator=g)[0]
        out["seed"] = int(torch.randint(2 ** 62, (1,), generator=g))
    return out


@pytest.mark.parametrize("method, batch", [("manifold", 8), ("nfm", 5)])
def test_a_cpu_stream_is_the_old_draw_sequence(method, batch):
    m, g = mixer(method, seed=3), torch.Generator().manual_seed(3)
    for _ in range(5):
        plan = m.draw(batch, device="cpu")
        for key, want in old_draws(method, g, batch).items():
            got = getattr(plan, key)
            assert torch.equal(got, want) if isinstance(want, torch.Tensor) else got == want, key


def test_the_device_beta_sampler_has_the_beta_law():
    """The sampler a CUDA generator uses (torch's Gamma kernel), run here with a CPU generator: mean and variance
    of Beta(2, 5) within 4 standard errors over 40000 draws."""
    a, b, n = 2.0, 5.0, 40000
    x = beta_by_standard_gamma(a, b, n, torch.Generator().manual_seed(0))
    assert x.dtype == torch.float64 and x.shape == (n,) and bool(((x > 0) & (x < 1)).all())
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    assert abs(float(x.mean()) - mean) < 4 * math.sqrt(var / n)
    m4 = float(((x - mean) ** 4).mean())
    assert abs(float(x.var()) - var) < 4 * math.sqrt((m4 - var ** 2) / n)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", BACKENDS)
def test_a_cuda_batch_draws_on_the_device(method):
    m = mixer(method)
    plan = m.draw(6, device="cuda")
    assert plan.lam.device.type == "cuda" and plan.perm.device.type == "cuda"
    assert list(m.device_generators) == [str(torch.device("cuda", torch.cuda.current_device()))]
    again = mixer(method)
    again.load_state_dict(m.state_dict())
    for va, vb in zip(plan_values(m.draw(6, device="cuda")), plan_values(again.draw(6, device="cuda"))):
        assert torch.equal(va, vb) if isinstance(va, torch.Tensor) else va == vb
