"""C-Mixup's pairing: the kernel's exact probabilities, the draws' distribution, seeds, and its use by any backend."""
import math
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
from scipy.stats import chi2
from torch import nn

from mixsuite.config import ConfigError, RunConfig, build_config, config_hash
from mixsuite.mixing import MixingConfig, build_mixer, mixer_from_config
from mixsuite.mixing.pairing import KernelPairing, PermutationPairing, kernel_partners, kernel_weights
from mixsuite.mixing.sampling import sample_lambda, sample_permutation


LABELS = torch.tensor([0.0, 1.0, 3.0, 3.5])


def hand_probabilities(y, sigma):
    """P(j | i) written out: exp(-(y_i - y_j)^2 / (2 sigma^2)) normalised over j (j = i included)."""
    rows = []
    for yi in y:
        w = [math.exp(-(yi - yj) ** 2 / (2 * sigma ** 2)) for yj in y]
        rows.append([v / sum(w) for v in w])
    return torch.tensor(rows, dtype=torch.float64)


def test_kernel_weights_are_the_formula():
    y = LABELS.tolist()
    for sigma in (0.5, 1.0, 2.0):
        assert torch.allclose(kernel_weights(LABELS, LABELS, sigma), hand_probabilities(y, sigma), atol=1e-12)
    # row 0 at sigma = 1 by hand: weights 1, e^-1/2, e^-9/2, e^-49/8
    w = torch.tensor([1.0, math.exp(-0.5), math.exp(-4.5), math.exp(-6.125)], dtype=torch.float64)
    assert torch.allclose(kernel_weights(LABELS, LABELS, 1.0)[0], w / w.sum(), atol=1e-12)


def test_distance_is_euclidean_over_the_label_vector():
    y = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])       # distances from row 0: 0, 5, 1
    w = torch.tensor([1.0, math.exp(-25 / 2), math.exp(-1 / 2)], dtype=torch.float64)
    assert torch.allclose(kernel_weights(y, y, 1.0)[0], w / w.sum(), atol=1e-12)


def test_draws_follow_the_kernel_chi_square():
    sigma, n = 1.0, 20000
    expected = hand_probabilities(LABELS.tolist(), sigma)
    g = torch.Generator().manual_seed(3)
    for i in range(len(LABELS)):
        rows = LABELS[i].repeat(n)
        draws = kernel_partners(rows, LABELS, sigma, generator=g)
        counts = torch.bincount(draws, minlength=len(LABELS)).double()
        e = expected[i] * n
        assert (e > 5).all()                          # every cell large enough for the chi-square test
        stat = float(((counts - e) ** 2 / e).sum())
        assert stat < chi2.ppf(0.999, len(LABELS) - 1), (i, stat)


def test_self_pairs_are_allowed_and_can_be_excluded():
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0.0, 100.0])                    # far apart: each row pairs with itself almost surely
    assert kernel_partners(y, y, 1.0, generator=g).tolist() == [0, 1]
    assert kernel_partners(y, y, 1.0, generator=g, exclude_self=True).tolist() == [1, 0]


def test_a_seed_reproduces_the_draws():
    y = torch.randn(64)
    a = kernel_partners(y, y, 0.3, generator=torch.Generator().manual_seed(7))
    b = kernel_partners(y, y, 0.3, generator=torch.Generator().manual_seed(7))
    c = kernel_partners(y, y, 0.3, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_a_wide_bandwidth_approaches_uniform():
    y = torch.randn(10) * 5
    gaps = [float((kernel_weights(y, y, s) - 0.1).abs().max()) for s in (1.0, 10.0, 100.0, 1e4)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-6
    g = torch.Generator().manual_seed(1)
    counts = torch.bincount(kernel_partners(y[:1].repeat(50000), y, 1e4, generator=g), minlength=10).double()
    stat = float(((counts - 5000) ** 2 / 5000).sum())
    assert stat < chi2.ppf(0.999, 9)


def test_pairing_within_rows_leaves_the_others_alone():
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0.0, 50.0, 0.1, 50.1, 0.2])
    perm = KernelPairing(0.5)(5, generator=g, rows=torch.tensor([0, 2, 4]), labels=y)
    assert perm[1] == 1 and perm[3] == 3 and set(perm[[0, 2, 4]].tolist()) <= {0, 2, 4}


def test_the_mixer_draws_layer_lambda_then_kernel_pairs_from_its_generator():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    for backend, layers in (("input", None), ("manifold", ["1"])):
        mixer = build_mixer(backend, model, alpha=2.0, layers=layers, generator=torch.Generator().manual_seed(5),
                            pairing=KernelPairing(0.7))
        with mixer.step(8, labels=y) as plan:
            out = model(x)
        g = torch.Generator().manual_seed(5)
        torch.randint(1, (1,), generator=g)                          # the layer draw (one layer in S)
        lam = sample_lambda(2.0, 1, generator=g)[0]
        perm = kernel_partners(y, y, 0.7, generator=g)
        assert torch.equal(plan.perm, perm) and torch.equal(plan.lam, lam)
        hidden = x if backend == "input" else model[1](model[0](x))
        mixed = lam * hidden + (1 - lam) * hidden[perm]
        expected = model(mixed) if backend == "input" else model[2](mixed)
        assert torch.allclose(out, expected, atol=1e-6)
        assert torch.allclose(plan.mix_targets(y), lam * y + (1 - lam) * y[perm])


def test_kernel_pairing_needs_labels():
    mixer = build_mixer("input", nn.Linear(2, 1), alpha=1.0, pairing=KernelPairing(1.0),
                        generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="labels=y"):
        mixer.draw(4)


def test_a_given_pairing_is_used_as_is():
    mixer = build_mixer("input", nn.Linear(2, 1), alpha=1.0, generator=torch.Generator().manual_seed(0))
    perm = torch.tensor([2, 3, 2, 3])
    assert torch.equal(mixer.draw(4, perm=perm).perm, perm)
    with pytest.raises(ValueError, match="partner index"):
        mixer.draw(4, perm=torch.tensor([0, 1, 2, 9]))


def test_permutation_pairing_draws_as_before():
    a = PermutationPairing()(10, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, sample_permutation(10, generator=torch.Generator().manual_seed(4)))


@dataclass
class _Cfg(MixingConfig, RunConfig):
    method: str = "input"


def test_config_pairing_keys_are_hashed_only_when_set():
    base = build_config(_Cfg)
    assert config_hash(base) == config_hash(build_config(_Cfg, [], ["pairing=permutation"]))
    assert config_hash(base) != config_hash(build_config(_Cfg, [], ["pairing=cmixup", "cmixup_bandwidth=1.75"]))
    with pytest.raises(ConfigError, match="pairing"):
        build_config(_Cfg, [], ["pairing=kernel"])
    with pytest.raises(ConfigError, match="cmixup_bandwidth"):
        build_config(_Cfg, [], ["cmixup_bandwidth=0"])


def test_mixer_from_config_uses_the_kernel():
    cfg = build_config(_Cfg, [], ["pairing=cmixup", "cmixup_bandwidth=0.25"])
    engine = SimpleNamespace(generator=lambda name: torch.Generator().manual_seed(0))
    mixer = mixer_from_config(cfg, nn.Linear(2, 1), engine)
    assert isinstance(mixer.pairing, KernelPairing) and mixer.pairing.bandwidth == 0.25
