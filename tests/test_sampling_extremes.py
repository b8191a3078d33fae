"""The Beta sampler at the extremes: exact (against scipy) or refused, never a hang or a wrong lambda; ordinary
alphas keep the random stream the committed records were made with."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from mixsuite.mixing import sample_beta, sample_lambda


def draws(alpha, n, seed, calls, **kw):
    g = torch.Generator().manual_seed(seed)
    return [sample_lambda(alpha, n, generator=g, **kw).tolist() for _ in range(calls)]


def test_ordinary_alphas_keep_their_stream():
    # the draws of the sampler the committed records were made with (sampling.py at d875b25)
    assert draws(2.0, 1, 0, 4) == [[0.7757794857025146], [0.5886749029159546], [0.42888572812080383],
                                   [0.1823773831129074]]
    assert draws(0.2, 3, 7, 2) == [[0.3317922353744507, 1.0, 0.40545472502708435],
                                   [0.9600027799606323, 0.9952651858329773, 0.9999985098838806]]
    assert draws(1.0, 1, 1, 2, fold=True) == [[0.600306510925293], [0.5989587306976318]]
    g = torch.Generator().manual_seed(0)
    assert sample_beta(2.0, 5.0, 1, generator=g, dtype=torch.float64).tolist() == [0.5285341545323392]
    assert sample_beta(2.0, 5.0, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64).tolist() == [
        0.43119737009532366, 0.2932501639127234, 0.018607753859187462]


@pytest.mark.parametrize("alpha", [math.inf, -math.inf, math.nan])
def test_a_non_finite_alpha_is_refused(alpha):
    with pytest.raises(ValueError, match="finite"):
        sample_lambda(alpha, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="finite"):
        sample_beta(2.0, alpha, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("alpha", [1.7e308, 1.7976931348623157e308, 1e200])
@pytest.mark.parametrize("n", [1, 5])
def test_the_largest_alphas_give_one_half(alpha, n):
    # Beta(a, a) has sd 1/sqrt(8a + 4): below float64's spacing at 1/2 from a ~ 1e33 on (the sampler gave 0 here)
    lam = sample_beta(alpha, alpha, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert lam.tolist() == [0.5] * n


@pytest.mark.parametrize("alpha", [1e3, 1e6])
@pytest.mark.parametrize("path", ["tensor", "scalar"])
def test_large_alphas_follow_scipy(alpha, path):
    g = torch.Generator().manual_seed(123)
    if path == "tensor":
        x = sample_beta(alpha, alpha, 20000, generator=g, dtype=torch.float64).numpy()
    else:   # one draw a call: the Python-float path a step takes
        x = np.array([sample_beta(alpha, alpha, 1, generator=g, dtype=torch.float64).item() for _ in range(4000)])
    law = stats.beta(alpha, alpha)
    assert stats.kstest(x, law.cdf).pvalue > 0.01
    sd = law.std()
    assert abs(x.mean() - 0.5) < 4 * sd / math.sqrt(len(x))
    assert abs(x.std(ddof=1) / sd - 1) < 4 * math.sqrt(2 / len(x))


@pytest.mark.parametrize("alpha", [1e-5, 1e-300])
@pytest.mark.parametrize("n", [1, 4000])
def test_tiny_alphas_are_a_fair_coin_at_0_and_1(alpha, n):
    # Beta(a, a) -> Bernoulli(1/2) on {0, 1} as a -> 0; both Gamma draws underflow to 0 (0/0 gave nan)
    g = torch.Generator().manual_seed(5)
    lam = torch.cat([sample_beta(alpha, alpha, n, generator=g, dtype=torch.float64) for _ in range(4000 // n)])
    assert torch.isfinite(lam).all()
    near_one = (lam > 0.5).double().mean().item()
    assert abs(near_one - 0.5) < 4 * 0.5 / math.sqrt(len(lam))
    assert ((lam < 1e-6) | (lam > 1 - 1e-6)).double().mean().item() > 0.99


def test_a_shape_too_small_to_invert_is_refused():
    with pytest.raises(ValueError, match="1/shape finite"):
        sample_lambda(1e-310, generator=torch.Generator().manual_seed(0))
