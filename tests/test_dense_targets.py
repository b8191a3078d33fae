"""Dense targets: each shaped backend's pixel mask reproduces the batch it mixed; per-pixel losses and maps mix as
the formulas say. Several heads and multi-label targets mix with the same pairing and lambda."""
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixsuite.mixing import Mixup, build_mixer
from mixsuite.mixing.losses import multilabel_bce

B, C, H, W = 6, 3, 16, 16


@pytest.mark.parametrize("backend,kw", [
    ("cutmix", {"alpha": 1.0, "image_size": (H, W)}),
    ("fmix", {"alpha": 1.0}),
    ("fmix", {"alpha": 1.0, "max_soft": 0.2}),                 # a soft band around the cut
    ("patchup", {"alpha": 2.0, "layers": ["input"]}),          # the paper's input step: CutMix
])
def test_the_mask_reproduces_the_mixed_input(backend, kw):
    x = torch.randn(B, C, H, W)
    model = nn.Sequential(nn.Identity())
    mixer = build_mixer(backend, model, generator=torch.Generator().manual_seed(11), **kw)
    with mixer.step(B) as plan:
        mixed = model(x)                                        # the hook mixes the input; Identity returns it
    m = plan.pixel_mask
    assert m.shape == (B, 1, H, W) and float(m.min()) >= 0 and float(m.max()) <= 1
    assert torch.allclose(mixed, m * x + (1 - m) * x[plan.perm], atol=1e-6)
    assert 0 < float((m < 1).float().mean()) < 1               # something of each was kept
    if kw.get("max_soft"):
        assert bool(((m > 0) & (m < 1)).any())
    assert torch.allclose(m.flatten(1).mean(1), torch.as_tensor(plan.loss_weight()).expand(B), atol=1e-6)


def test_resizemix_mask_marks_the_pasted_partner():
    x = torch.randn(B, C, H, W)
    model = nn.Sequential(nn.Identity())
    mixer = build_mixer("resizemix", model, generator=torch.Generator().manual_seed(2))
    with mixer.step(B) as plan:
        mixed = model(x)
    m = plan.pixel_mask
    own = m.bool().expand_as(x)
    assert torch.equal(mixed[own], x[own])                      # outside the box: the example's own pixels
    rows, cols = (m[0, 0] == 0).nonzero(as_tuple=True)
    y0, y1, x0, x1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    shrunk = F.interpolate(x[plan.perm], size=(y1 - y0, x1 - x0), mode="nearest")
    assert torch.equal(mixed[:, :, y0:y1, x0:x1], shrunk)       # inside: the whole partner, shrunk
    assert torch.allclose(m.flatten(1).mean(1), plan.loss_weight().expand(B))


def test_patchup_hidden_mask_is_the_own_share_per_pixel():
    model = nn.Sequential(nn.Conv2d(C, 4, 3, padding=1), nn.Identity())
    x = torch.randn(B, C, H, W)
    mixer = build_mixer("patchup", model, layers=["1"], block_size=3, generator=torch.Generator().manual_seed(5))
    with mixer.step(B) as plan:
        model(x)
    m = plan.pixel_mask
    assert m.shape == (B, 1, H, W) and bool(((m > 0) & (m < 1)).any())   # soft PatchUp blends inside the blocks
    # a feature map equal on every channel mixes, channel by channel, exactly as the averaged mask says
    g = torch.randn(B, 1, H, W).expand(B, 4, H, W).contiguous()
    out = plan.mix(g)
    assert torch.allclose(out.mean(1, keepdim=True), m * g[:, :1] + (1 - m) * g[plan.perm, :1], atol=1e-6)


def test_segmentation_loss_is_the_per_pixel_formula():
    x, classes = torch.randn(B, C, H, W), 5
    y = torch.randint(classes, (B, H, W))
    model = nn.Conv2d(C, classes, 1)
    mixer = build_mixer("cutmix", model, alpha=1.0, image_size=(H, W), generator=torch.Generator().manual_seed(3))
    with mixer.step(B) as plan:
        logits = model(x)
    loss = plan.mix_loss(partial(F.cross_entropy, reduction="none"), logits, y)
    logp = F.log_softmax(logits, 1)
    nll_a = -logp.gather(1, y.unsqueeze(1))[:, 0]
    nll_b = -logp.gather(1, y[plan.perm].unsqueeze(1))[:, 0]
    m = plan.pixel_mask[:, 0]
    assert torch.allclose(loss, (m * nll_a + (1 - m) * nll_b).mean(), atol=1e-6)
    mixed = plan.mix_targets(y)                                 # a hard mask: each pixel's label, a class map
    assert mixed.dtype == y.dtype and torch.equal(mixed, torch.where(m > 0.5, y, y[plan.perm]))
    assert torch.allclose(F.cross_entropy(logits, mixed), loss, atol=1e-6)


def test_a_depth_map_mixes_pixel_by_pixel_at_a_coarser_layer():
    model = nn.Sequential(nn.Conv2d(C, 4, 3, stride=2, padding=1), nn.Identity())   # 8 x 8 at the mixing layer
    mixer = build_mixer("cutmix", model, alpha=1.0, layers=["1"], image_size=(8, 8),
                        generator=torch.Generator().manual_seed(4))
    x, depth = torch.randn(B, C, H, W), torch.rand(B, 1, H, W) * 10
    with mixer.step(B) as plan:
        model(x)
    assert plan.pixel_mask.shape == (B, 1, 8, 8)
    up = plan.pixel_mask.repeat_interleave(2, 2).repeat_interleave(2, 3)          # nearest, 8 -> 16
    assert torch.allclose(plan.mix_targets(depth), up * depth + (1 - up) * depth[plan.perm])
    assert torch.allclose(plan.mix_targets(depth[:, 0]), (up * depth + (1 - up) * depth[plan.perm])[:, 0])


def test_a_soft_mask_gives_a_two_class_target_per_pixel():
    x, y = torch.randn(B, C, H, W), torch.randint(4, (B, H, W))
    model = nn.Sequential(nn.Identity())
    mixer = build_mixer("fmix", model, alpha=1.0, max_soft=0.3, generator=torch.Generator().manual_seed(1))
    with mixer.step(B) as plan:
        model(x)
    with pytest.raises(ValueError, match="num_classes"):
        plan.mix_targets(y)
    soft = plan.mix_targets(y, num_classes=4)
    m = plan.pixel_mask
    expected = m * F.one_hot(y, 4).permute(0, 3, 1, 2) + (1 - m) * F.one_hot(y[plan.perm], 4).permute(0, 3, 1, 2)
    assert soft.shape == (B, 4, H, W) and torch.allclose(soft, expected.float()) and torch.allclose(soft.sum(1), torch.ones(B, H, W))


@pytest.mark.parametrize("backend,layers", [("input", None), ("manifold", ["0"])])
def test_input_and_manifold_mixup_mix_dense_targets_by_lambda(backend, layers):
    model = nn.Sequential(nn.Conv2d(C, 4, 1), nn.Identity())
    mixer = build_mixer(backend, model, alpha=1.0, layers=layers, generator=torch.Generator().manual_seed(8))
    x, d, y = torch.randn(B, C, H, W), torch.rand(B, 2, H, W), torch.randint(3, (B, H, W))
    with mixer.step(B) as plan:
        model(x)
    lam = plan.lam
    assert plan.pixel_mask is None
    assert torch.allclose(plan.mix_targets(d), lam * d + (1 - lam) * d[plan.perm])
    oh = F.one_hot(y, 3).permute(0, 3, 1, 2).float()
    assert torch.allclose(plan.mix_targets(y, num_classes=3), lam * oh + (1 - lam) * oh[plan.perm], atol=1e-6)
    with pytest.raises(ValueError, match="num_classes"):
        plan.mix_targets(y)
    per_pixel = partial(F.cross_entropy, reduction="none")
    logits = torch.randn(B, 3, H, W)
    assert torch.allclose(plan.mix_loss(per_pixel, logits, y),
                          lam * per_pixel(logits, y).mean() + (1 - lam) * per_pixel(logits, y[plan.perm]).mean())


def _plan():
    model = nn.Linear(4, 4)
    mixer = build_mixer("input", model, alpha=1.0, generator=torch.Generator().manual_seed(9))
    with mixer.step(B) as plan:
        model(torch.randn(B, 4))
    return plan


def test_heads_mix_with_the_same_pairing_and_lambda():
    plan = _plan()
    lam = plan.lam
    ys = {"species": torch.randint(10, (B,)), "colour": torch.randint(3, (B,))}
    mixed = plan.mix_targets(ys, num_classes={"species": 10, "colour": 3}, smoothing={"species": 0.1})

    def smoothed(y, c, s):   # off = s / C, on = 1 - s + s / C
        return torch.full((B, c), s / c).scatter_(1, y.view(-1, 1), 1 - s + s / c)
    for head, c, s in (("species", 10, 0.1), ("colour", 3, 0.0)):
        t = smoothed(ys[head], c, s)
        assert torch.allclose(mixed[head], lam * t + (1 - lam) * t[plan.perm])
    outs = {"species": torch.randn(B, 10), "colour": torch.randn(B, 3)}
    ce = partial(F.cross_entropy, reduction="none")
    loss = plan.mix_loss(ce, outs, ys, weights={"colour": 0.5})
    by_head = {h: lam * ce(outs[h], ys[h]).mean() + (1 - lam) * ce(outs[h], ys[h][plan.perm]).mean() for h in ys}
    assert torch.allclose(loss, by_head["species"] + 0.5 * by_head["colour"])


def test_multi_label_targets_mix_by_lambda_under_bce():
    plan = _plan()
    lam, y = plan.lam, torch.randint(2, (B, 5)).float()
    logits = torch.randn(B, 5)
    mixed = plan.mix_targets(y)
    assert torch.allclose(mixed, lam * y + (1 - lam) * y[plan.perm])
    bce = lambda z, t: -(t * F.logsigmoid(z) + (1 - t) * F.logsigmoid(-z)).mean(-1)   # written out
    loss = plan.mix_loss(multilabel_bce, logits, y)
    assert torch.allclose(loss, lam * bce(logits, y).mean() + (1 - lam) * bce(logits, y[plan.perm]).mean(), atol=1e-6)
    assert torch.allclose(loss, bce(logits, mixed).mean(), atol=1e-6)         # BCE is linear in the target


def test_timm_mixup_mixes_every_head_with_one_draw():
    x = torch.randn(4, 3, 8, 8)
    ys = {"cls": torch.tensor([0, 1, 2, 3]), "tags": torch.tensor([[1., 0.], [0., 1.], [1., 1.], [0., 0.]])}
    mix = Mixup(mixup_alpha=1.0, num_classes={"cls": 5, "tags": 2}, label_smoothing={"cls": 0.1},
                multi_label={"tags": True}, generator=torch.Generator().manual_seed(0))
    mixed_x, out = mix(x, ys)
    lam = float(((mixed_x - x.flip(0)) / (x - x.flip(0))).flatten()[0])      # x*lam + flip(x)*(1 - lam)
    cls = torch.full((4, 5), 0.02).scatter_(1, ys["cls"].view(-1, 1), 0.92)
    assert torch.allclose(out["cls"], lam * cls + (1 - lam) * cls.flip(0), atol=1e-5)
    assert torch.allclose(out["tags"], lam * ys["tags"] + (1 - lam) * ys["tags"].flip(0), atol=1e-5)
    with pytest.raises(ValueError, match="head"):
        Mixup(num_classes={"cls": 5}, generator=torch.Generator().manual_seed(0))(x, {"other": ys["cls"]})


def test_resizemix_pastes_the_shrunk_partner_map_into_the_target():
    x, y = torch.randn(B, C, H, W), torch.randint(7, (B, H, W))
    model = nn.Sequential(nn.Identity())
    mixer = build_mixer("resizemix", model, generator=torch.Generator().manual_seed(2))
    with mixer.step(B) as plan:
        model(x)
    m = plan.pixel_mask[:, 0]
    mixed = plan.mix_targets(y)
    assert mixed.dtype == y.dtype and torch.equal(mixed[m == 1], y[m == 1])
    rows, cols = (m[0] == 0).nonzero(as_tuple=True)
    y0, y1, x0, x1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    shrunk = F.interpolate(y[plan.perm].unsqueeze(1).float(), size=(y1 - y0, x1 - x0), mode="nearest")[:, 0].long()
    assert torch.equal(mixed[:, y0:y1, x0:x1], shrunk)
