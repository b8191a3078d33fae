"""The descendants of manifold mixup as backends: PatchUp's blocks, NFM's noise, AlignMixup's transport plan,
FMix's mask, ResizeMix's paste, each target's weight, seeds, and a backend registered by an entry point."""
import math
import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixsuite.errors import UnknownName
from mixsuite.mixing import MIXERS, MixingShapeError, MixPlan, build_mixer, sinkhorn
from mixsuite.mixing.alignmix import AlignMixPlan
from mixsuite.mixing.noisy import NOISE_BETA
from mixsuite.registry import DuplicateName, PluginError

DESCENDANTS = ("patchup", "nfm", "alignmix", "fmix", "resizemix")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


class Maps(nn.Module):
    """Identity on (B, C, H, W) maps, with a named layer `feat` and a 2-D layer `flat` to hook."""

    def __init__(self):
        super().__init__()
        self.feat = nn.Identity()
        self.flat = nn.Flatten()

    def forward(self, x):
        return self.flat(self.feat(x))


def mixed_map(name, h, **kw):
    """(the mixed map, the plan) of one step of backend `name` at layer `feat` (or the input)."""
    kw.setdefault("layers", ["feat"])
    mixer = build_mixer(name, Maps(), generator=gen(kw.pop("seed", 0)), **kw)
    with mixer.step(len(h)) as plan:
        out = mixer.model(h)
    return out.view_as(h), plan


def one_hot_rows(n, classes=5):
    return F.one_hot(torch.arange(n) % classes, classes).float()


def partnered_rows(plan):
    return plan.perm != torch.arange(len(plan.perm))


# ---------------------------------------------------------------- PatchUp
@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_patchup_swaps_whole_blocks_and_weighs_the_target_by_the_changed_share(mode):
    h = torch.randn(6, 3, 12, 12)
    out, plan = mixed_map("patchup", h, mode=mode, block_size=3, gamma=0.4, prob=1.0, seed=3)
    lam = float(plan.lam) if mode == "soft" else 0.0
    partner = h[plan.perm]
    inside = lam * h + (1 - lam) * partner
    holes = torch.isclose(out, inside, atol=1e-6) & ~torch.isclose(out, h, atol=1e-6)
    rows = partnered_rows(plan)
    mask = holes[rows].any(0).float()                       # one (C, H, W) pattern for the whole batch
    assert torch.equal(holes[rows], mask.expand_as(holes[rows]).bool())
    expected = mask * inside + (1 - mask) * h
    torch.testing.assert_close(out, expected)
    # the changed set is a union of whole 3x3 blocks (clipped at the border): opening it changes nothing
    opened = F.max_pool2d(-F.max_pool2d(-mask[None], 3, 1, 1), 3, 1, 1)[0]
    assert torch.equal(opened, mask) and 0 < mask.mean() < 1
    changed = mask.mean()
    torch.testing.assert_close(plan.target_lam, 1 - changed * (1 - lam))
    y = one_hot_rows(6)
    torch.testing.assert_close(plan.mix_targets(y),
                               (1 - changed) * y + changed * (lam * y + (1 - lam) * y[plan.perm]))


def test_patchup_seed_rate_is_the_dropblock_adjustment():
    block, gamma, side = 3, 0.4, 12
    rate = gamma * side ** 2 / (block ** 2 * (side - block + 1) ** 2)
    mixer = build_mixer("patchup", Maps(), layers=["feat"], block_size=block, gamma=gamma, prob=1.0,
                        per_sample=True, generator=gen(1))
    h = torch.randn(64, 4, side, side)
    plan = mixer.draw(64)
    seeds = torch.bernoulli(torch.full((64, 4, side, side), rate), generator=plan.rng("cpu"))
    holes = plan.block_mask(h.shape, plan.rng("cpu"), "cpu")
    assert torch.equal(holes, F.max_pool2d(seeds, block, 1, block // 2))
    assert abs(seeds.mean().item() - rate) < 0.01                           # ~37k Bernoulli draws
    assert len(set(holes.flatten(1).mean(1).tolist())) > 1                   # per sample: one mask each


def test_patchup_input_is_cutmix_and_prob_gives_plain_steps():
    h = torch.randn(5, 3, 16, 16)
    out, plan = mixed_map("patchup", h, layers=["input"], prob=1.0, seed=4)
    changed = (out != h)[partnered_rows(plan)].any(0).any(0)
    ys, xs = changed.nonzero(as_tuple=True)
    box = torch.zeros(16, 16, dtype=torch.bool)
    box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    assert torch.equal(changed, box)                                         # one rectangle: CutMix
    torch.testing.assert_close(plan.target_lam, 1 - box.float().mean())
    mixer = build_mixer("patchup", Maps(), layers=["feat"], mode="hard", generator=gen(2))   # the paper: prob 0.7
    plain = sum(not mixer.draw(4).active for _ in range(1000)) / 1000
    assert abs(plain - 0.3) < 0.05                                           # 3.5 standard errors


def test_patchup_needs_a_feature_map_big_enough():
    with pytest.raises(MixingShapeError, match=r"block_size 7.*'feat'.*\(4, 3, 4, 4\)"):
        mixed_map("patchup", torch.randn(4, 3, 4, 4), prob=1.0)
    with pytest.raises(ValueError, match="odd"):
        build_mixer("patchup", Maps(), layers=["feat"], block_size=4)


# ---------------------------------------------------------------- Noisy Feature Mixup
def test_nfm_noise_moments_given_the_scales():
    c, add, mult = 2.0, 0.4, 0.2
    h = torch.full((16, 8, 32, 32), c)             # a constant: the mix leaves it, the noise is all that moves
    out, plan = mixed_map("nfm", h, add_noise=add, mult_noise=mult, seed=5)
    b1, b2 = float(plan.mult_scale), float(plan.add_scale)
    var = c ** 2 * (mult * b1) ** 2 / 3 + (add * b2) ** 2
    n = out.numel()
    assert abs(out.mean().item() - c) < 4 * math.sqrt(var / n)
    assert abs(out.var().item() - var) < 0.02 * var
    assert out.min() >= c * (1 - mult * b1) - 6 * add * b2


def test_nfm_scales_are_beta_2_5_and_without_noise_it_is_manifold_mixup():
    mixer = build_mixer("nfm", Maps(), layers=["feat"], per_sample=True, generator=gen(6))
    b = torch.cat([mixer.draw(100).mult_scale for _ in range(50)]).double()
    a_, b_ = NOISE_BETA
    assert abs(b.mean().item() - a_ / (a_ + b_)) < 0.008                       # 3.5 standard errors
    assert abs(b.var().item() - a_ * b_ / ((a_ + b_) ** 2 * (a_ + b_ + 1))) < 0.002
    h = torch.randn(6, 3, 4, 4)
    quiet, plan = mixed_map("nfm", h, add_noise=0.0, mult_noise=0.0, seed=7)
    torch.testing.assert_close(quiet, MixPlan(plan.layer, plan.lam, plan.perm).mix(h))
    y = one_hot_rows(6)
    torch.testing.assert_close(plan.mix_targets(y), plan.lam * y + (1 - plan.lam) * y[plan.perm])


# ---------------------------------------------------------------- AlignMixup
@pytest.mark.parametrize("eps", [0.1, 1.0])
def test_sinkhorn_plan_has_uniform_marginals(eps):
    x, y = torch.randn(3, 16, 8, generator=gen(8)) * 0.3, torch.randn(3, 16, 8, generator=gen(9)) * 0.3
    plan = sinkhorn(torch.cdist(x, y) ** 2, eps=eps, max_iter=1000, tol=1e-6)
    torch.testing.assert_close(plan.sum(-1), torch.full((3, 16), 1 / 16), atol=1e-6, rtol=0)
    torch.testing.assert_close(plan.sum(-2), torch.full((3, 16), 1 / 16), atol=1e-6, rtol=0)
    assert plan.min() >= 0


@pytest.mark.parametrize("direction", [0, 1])
def test_alignmix_moves_a_spatially_shuffled_partner_back_onto_the_grid(direction):
    a = torch.randn(1, 4, 3, 3, generator=gen(10))
    shuffle = torch.randperm(9, generator=gen(11))
    b = a.flatten(2)[:, :, shuffle].view_as(a)                  # the same vectors at other places
    h, lam = torch.cat([a, b]), torch.tensor(0.3)
    plan = AlignMixPlan("feat", lam, torch.tensor([1, 0]), direction=torch.tensor(direction))
    out = plan.mix(h)
    # direction 0: the partner aligned onto the sample's grid is the sample itself; 1: the sample onto the partner's
    expected = h if direction == 0 else h[[1, 0]]
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)
    y = one_hot_rows(2)
    torch.testing.assert_close(plan.mix_targets(y), lam * y + (1 - lam) * y[[1, 0]])


def test_alignmix_input_is_plain_mixup_and_vectors_are_refused():
    h = torch.randn(4, 3, 4, 4)
    out, plan = mixed_map("alignmix", h, layers=["input"], seed=12)
    torch.testing.assert_close(out, plan.lam * h + (1 - plan.lam) * h[plan.perm])
    with pytest.raises(MixingShapeError, match=r"alignmix.*'flat'.*\(4, 48\)"):
        mixed_map("alignmix", h, layers=["flat"])


def test_alignmix_per_sample_direction_and_lambda():
    mixer = build_mixer("alignmix", Maps(), layers=["feat"], per_sample=True, generator=gen(13))
    plan = mixer.draw(64)
    assert plan.lam.shape == (64,) and plan.direction.shape == (64,)
    assert 20 < int(plan.direction.sum()) < 44
    h = torch.randn(64, 2, 2, 2)
    out = plan.mix(h)
    for i in (0, 1):
        solo = AlignMixPlan("feat", plan.lam, plan.perm, direction=torch.tensor(int(plan.direction[i])))
        torch.testing.assert_close(out[i], solo.mix(h)[i], atol=1e-5, rtol=0)


# ---------------------------------------------------------------- FMix
def test_fmix_mask_area_is_lambda_up_to_rounding_and_is_the_target_weight():
    h = torch.randn(4, 3, 32, 32)
    for seed in range(5):
        out, plan = mixed_map("fmix", h, layers=["input"], seed=seed)
        mask = (out == h)[partnered_rows(plan)].all(0).all(0).float()        # 1 where the sample is kept
        torch.testing.assert_close(out, mask * h + (1 - mask) * h[plan.perm])
        n = mask.numel()
        assert mask.sum() in (math.floor(plan.lam * n), math.ceil(plan.lam * n))
        torch.testing.assert_close(plan.target_lam, mask.mean())
        edges = ((mask[1:] != mask[:-1]).float().mean() + (mask[:, 1:] != mask[:, :-1]).float().mean()) / 2
        assert edges < 0.15                                   # low frequency: few edges (white noise: 2 lam (1 - lam))


def test_fmix_soft_band_and_per_sample_masks():
    h = torch.randn(8, 1, 16, 16)
    mixer = build_mixer("fmix", Maps(), per_sample=True, max_soft=0.1, generator=gen(14))
    plan = mixer.draw(8)
    masks = plan.masks(16, 16, "cpu")
    assert masks.shape == (8, 16, 16) and masks.min() >= 0 and masks.max() <= 1
    assert ((masks > 0) & (masks < 1)).any()
    count = masks.flatten(1).sum(1)
    assert torch.all((count - plan.lam * 256).abs() <= 1 + 1e-4)
    with mixer.step(8) as plan:
        mixer.model(h)
    assert plan.target_lam.shape == (8,)


# ---------------------------------------------------------------- ResizeMix
@pytest.mark.parametrize("per_sample", [False, True])
def test_resizemix_pastes_the_shrunk_partner_and_weighs_by_area(per_sample):
    h = torch.randn(6, 2, 20, 20)
    out, plan = mixed_map("resizemix", h, layers=["input"], per_sample=per_sample, seed=15)
    for i, (y0, y1, x0, x1) in enumerate(plan.boxes(20, 20, "cpu") * (1 if per_sample else 6)):
        tau = float(plan.tau[i] if per_sample else plan.tau)
        assert (y1 - y0, x1 - x0) == (int(20 * tau), int(20 * tau))
        shrunk = F.interpolate(h[plan.perm[i]][None], size=(y1 - y0, x1 - x0), mode="nearest")[0]
        torch.testing.assert_close(out[i, :, y0:y1, x0:x1], shrunk)
        kept = torch.ones(20, 20, dtype=torch.bool)
        kept[y0:y1, x0:x1] = False
        assert torch.equal(out[i][:, kept], h[i][:, kept])
        weight = plan.target_lam[i] if per_sample else plan.target_lam
        assert float(weight) == pytest.approx(1 - (y1 - y0) * (x1 - x0) / 400)


def test_resizemix_rate_is_uniform_on_the_papers_range():
    mixer = build_mixer("resizemix", Maps(), per_sample=True, generator=gen(16))
    tau = torch.cat([mixer.draw(100).tau for _ in range(100)])
    assert 0.1 <= tau.min() and tau.max() <= 0.8 and abs(tau.mean().item() - 0.45) < 0.01


# ---------------------------------------------------------------- every descendant
def layers_of(name):
    return ["feat"] if name in ("patchup", "nfm", "alignmix") else None


@pytest.mark.parametrize("name", DESCENDANTS)
def test_same_seed_same_draws_and_a_resumed_generator_continues(name):
    h = torch.randn(6, 3, 4, 4)
    kw = {"block_size": 3} if name == "patchup" else {}
    runs = []
    for _ in range(2):
        mixer = build_mixer(name, Maps(), layers=layers_of(name), generator=gen(17), **kw)
        steps = []
        for _ in range(3):
            with mixer.step(6) as plan:
                out = mixer.model(h)
            steps.append((out, plan.mix_targets(one_hot_rows(6)) if plan.active else None))
        runs.append(steps)
        state = mixer.state_dict()
    for (o1, t1), (o2, t2) in zip(*runs):
        assert torch.equal(o1, o2) and (t1 is None or torch.equal(t1, t2))
    resumed = build_mixer(name, Maps(), layers=layers_of(name), generator=gen(99), **kw)
    resumed.load_state_dict(state)
    a, b = mixer.draw(6), resumed.draw(6)
    assert torch.equal(a.perm, b.perm) and torch.equal(a.lam, b.lam)
    other = build_mixer(name, Maps(), layers=layers_of(name), generator=gen(18), **kw)
    with other.step(6) as plan:
        assert not torch.equal(other.model(h), runs[0][0][0])


@pytest.mark.parametrize("name", DESCENDANTS)
def test_a_recomputed_forward_mixes_the_same_way(name):
    h = torch.randn(4, 3, 4, 4)
    kw = {"block_size": 3, "prob": 1.0} if name == "patchup" else {}
    plan = build_mixer(name, Maps(), layers=layers_of(name), generator=gen(19), **kw).draw(4)
    assert torch.equal(plan.mix(h), plan.mix(h))        # what gradient checkpointing's second forward needs


@pytest.mark.parametrize("name", ["patchup", "alignmix", "fmix", "resizemix"])
def test_map_backends_name_the_layer_and_shape_they_cannot_mix_and_nfm_mixes_vectors(name):
    h = torch.randn(4, 3, 4, 4)
    with pytest.raises(MixingShapeError, match=rf"{name} mixes \(B, C, H, W\).*'flat' outputs shape \(4, 48\)"):
        mixed_map(name, h, layers=["flat"], **({"prob": 1.0} if name == "patchup" else {}))
    out, plan = mixed_map("nfm", h, layers=["flat"], add_noise=0.0, mult_noise=0.0)
    torch.testing.assert_close(out.flatten(1), plan.lam * h.flatten(1) + (1 - plan.lam) * h.flatten(1)[plan.perm])


# ---------------------------------------------------------------- third-party backends
PLUGIN = '''
import torch
from mixsuite.mixing import MIXERS, Mixer, MixPlan


@MIXERS.register(name="halves")          # a plugin may also register itself while its entry point loads
class Halves(Mixer):
    """Every step mixes the input half and half with the reversed batch."""

    def draw(self, batch_size, rows=None, device=None):
        return MixPlan("input", torch.tensor(0.5), torch.arange(batch_size).flip(0))


NOT_A_MIXER = 3
'''


def fake_install(site, dist, entries):
    """A package visible to importlib.metadata as if pip had installed it, with [mixsuite.mixers] entries."""
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[mixsuite.mixers]\n{lines}\n")


@pytest.fixture
def plugin_site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "halves_mixer.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(MIXERS, "_items", dict(MIXERS._items))      # the global registry comes back untouched
    monkeypatch.setattr(MIXERS, "_scanned", False)
    return site


def test_a_backend_registered_by_an_entry_point_runs(plugin_site):
    fake_install(plugin_site, "halves-mixer", {"halves": "halves_mixer:Halves"})
    assert "halves" in MIXERS.names()
    x = torch.randn(4, 3, 2, 2)
    mixer = build_mixer("halves", Maps())
    with mixer.step(4) as plan:
        out = mixer.model(x)
    torch.testing.assert_close(out.view_as(x), 0.5 * x + 0.5 * x.flip(0))
    y = one_hot_rows(4)
    torch.testing.assert_close(plan.mix_targets(y), 0.5 * y + 0.5 * y.flip(0))


def test_plugin_names_are_loud_on_duplicates_and_unknown_names(plugin_site, monkeypatch):
    builtin = dict(MIXERS._items)

    def installed(dists):
        for d in plugin_site.glob("*.dist-info"):
            shutil.rmtree(d)
        for dist, entries in dists.items():
            fake_install(plugin_site, dist, entries)
        monkeypatch.setattr(MIXERS, "_items", dict(builtin))
        monkeypatch.setattr(MIXERS, "_scanned", False)

    installed({"shadow": {"manifold": "halves_mixer:Halves"}})
    with pytest.raises(DuplicateName, match=r"'manifold' is claimed twice.*ManifoldMixup.*halves_mixer:Halves.*shadow"):
        MIXERS.names()
    installed({"one": {"halves": "halves_mixer:Halves"}, "other": {"halves": "halves_mixer:Halves"}})
    with pytest.raises(DuplicateName, match=r"'halves' is claimed twice.*(one.*other|other.*one)"):
        build_mixer("halves")
    installed({"junk": {"junk": "halves_mixer:NOT_A_MIXER", "gone": "no_such_module:X"}})
    with pytest.raises(PluginError, match="'junk'.*not a subclass of mixsuite.mixing.Mixer"):
        build_mixer("junk")
    with pytest.raises(PluginError, match="cannot import mixing backend 'gone'.*no_such_module"):
        build_mixer("gone")
    with pytest.raises(UnknownName, match="did you mean 'patchup'"):
        build_mixer("patchupp")
