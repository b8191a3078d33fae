"""mixsuite.mixing.Mixup against timm.data.Mixup: timm's numpy draws are recorded and replayed into mixsuite's
Mixup, call by call, and the mixed inputs and targets must be bit-equal."""
import numpy as np
import pytest
import torch

from mixsuite.mixing import InputMixup, MixPlan, Mixup, apply_plan
from mixsuite.mixing.backends import CutMixPlan

timm_mixup = pytest.importorskip("timm.data.mixup")


class RecordingRandom:
    """numpy.random for timm: a seeded RandomState whose every draw is logged."""

    def __init__(self, seed):
        self.rs, self.log = np.random.RandomState(seed), []

    def beta(self, a, b, size=None):
        assert a == b
        v = self.rs.beta(a, b, size)
        self.log.append(("beta", (a, size), v))
        return v

    def rand(self, *shape):
        v = self.rs.rand(*shape)
        self.log.append(("rand", (shape[0] if shape else None,), v))
        return v

    def randint(self, low, high=None, size=None):
        v = self.rs.randint(low, high, size)
        self.log.append(("randint", (low, high, size), v))
        return v


class NumpyWith:
    """numpy, with `random` replaced."""

    def __init__(self, random):
        self.random = random

    def __getattr__(self, name):
        return getattr(np, name)


class Replay:
    """mixsuite's draws, answered from timm's log; each call must be the one timm made next."""

    def __init__(self, log):
        self.log = list(log)

    def _next(self, kind, args):
        got_kind, got_args, v = self.log.pop(0)
        assert (got_kind, got_args) == (kind, args), f"mixsuite drew {kind}{args}, timm drew {got_kind}{got_args}"
        return torch.as_tensor(v) if isinstance(v, np.ndarray) else v.item() if isinstance(v, np.generic) else v

    def beta(self, alpha, n=None):
        return self._next("beta", (alpha, n))

    def rand(self, n=None):
        return self._next("rand", (n,))

    def randint(self, low, high, n=None):
        return self._next("randint", (low, high, n))


ALPHAS = {  # (mixup_alpha, cutmix_alpha, cutmix_minmax)
    "mixup": (0.8, 0.0, None), "cutmix": (0.0, 1.0, None), "both": (0.8, 1.0, None), "minmax": (0.8, 0.0, (0.2, 0.8)),
}
OPTIONS = [dict(prob=1.0, correct_lam=True, label_smoothing=0.1), dict(prob=0.6, correct_lam=False, label_smoothing=0.0),
           dict(prob=0.8, correct_lam=True, label_smoothing=0.2, switch_prob=0.7)]


@pytest.mark.parametrize("options", OPTIONS, ids=["p1-corrected-ls0.1", "p0.6-uncorrected", "p0.8-switch0.7"])
@pytest.mark.parametrize("alphas", list(ALPHAS))
@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_same_draws_give_bit_equal_inputs_and_targets(mode, alphas, options, monkeypatch):
    mixup_alpha, cutmix_alpha, minmax = ALPHAS[alphas]
    kwargs = dict(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, cutmix_minmax=minmax, mode=mode,
                  num_classes=7, **options)
    recorder = RecordingRandom(seed=sum(map(ord, mode + alphas)))
    monkeypatch.setattr(timm_mixup, "np", NumpyWith(recorder))
    theirs, ours = timm_mixup.Mixup(**kwargs), Mixup(**kwargs)
    g = torch.Generator().manual_seed(0)
    kinds = set()
    for _ in range(6):
        x, y = torch.randn(8, 3, 15, 13, generator=g), torch.randint(7, (8,), generator=g)
        recorder.log.clear()
        x_t, y_t = theirs(x.clone(), y)
        ours.draws = Replay(recorder.log)
        x_m, y_m = ours(x, y)
        assert ours.draws.log == [], "timm drew more than mixsuite"
        assert torch.equal(x_m, x_t) and torch.equal(y_m, y_t)
        assert not torch.equal(x_m, x) or torch.equal(x_t, x)
        kinds.add("mixed" if not torch.equal(x_m, x) else "plain")
    assert "mixed" in kinds


def test_multi_label_targets_match():
    targets = (torch.rand(6, 5, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    theirs = timm_mixup.mixup_target(targets, 5, lam=0.3, smoothing=0.1, multi_label=True)
    ours = Mixup(label_smoothing=0.1, num_classes=5, multi_label=True)
    from mixsuite.mixing.timm_mixup import MixupDraw

    assert torch.equal(ours.mix_targets(targets, MixupDraw(0.3, False, None)), theirs)


def test_seeded_generator_reproduces_and_defaults_like_timm():
    x, y = torch.randn(6, 3, 8, 8), torch.arange(6)
    a = Mixup(cutmix_alpha=1.0, generator=torch.Generator().manual_seed(3))(x, y)
    b = Mixup(cutmix_alpha=1.0, generator=torch.Generator().manual_seed(3))(x, y)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[1].shape == (6, 1000) and torch.allclose(a[1].sum(1), torch.ones(6))  # timm's num_classes default


@pytest.mark.parametrize("kwargs, match", [(dict(mode="row"), "mode must be one of"),
                                           (dict(mixup_alpha=0.0), "nothing would be mixed"),
                                           (dict(cutmix_minmax=(0.9, 0.2)), "cutmix_minmax"),
                                           (dict(prob=1.5), "prob must lie in")])
def test_bad_arguments_say_what_to_change(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Mixup(**kwargs)


def test_odd_batch_is_refused():
    with pytest.raises(ValueError, match="must be even"):
        Mixup()(torch.randn(5, 3, 4, 4), torch.arange(5))


def test_the_core_backends_agree_with_timm_on_the_same_lambda_box_and_pairs():
    """mixsuite's input-mixup plan (a fused lerp, equal to within rounding) and CutMix plan (a copy, exactly), with
    timm's batch reversal as the pairing."""
    x = torch.randn(8, 3, 16, 16)
    flip = torch.arange(7, -1, -1)
    lam = 0.37
    theirs = timm_mixup.Mixup(mixup_alpha=1.0, num_classes=4)
    theirs._params_per_batch = lambda: (lam, False)
    x_t, _ = theirs(x.clone(), torch.zeros(8))
    net = torch.nn.Identity()
    with apply_plan(net, MixPlan(InputMixup.default_layers[0], torch.tensor(lam), flip)):
        ours = net(x)
    assert torch.allclose(ours, x_t, atol=1e-6, rtol=0)
    box = (2, 11, 5, 9)
    cut = timm_mixup.Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=4)
    cut._params_per_batch = lambda: (0.5, True)
    monkey = timm_mixup.cutmix_bbox_and_lam
    try:
        timm_mixup.cutmix_bbox_and_lam = lambda *a, **k: (box, 1 - 36 / 256)
        x_c, _ = cut(x.clone(), torch.zeros(8))
    finally:
        timm_mixup.cutmix_bbox_and_lam = monkey
    assert torch.equal(CutMixPlan("input", torch.tensor(1 - 36 / 256), flip, box=box).mix(x), x_c)
