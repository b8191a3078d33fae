"""Manifold mixup in transformers: a timm ViT's token states after blocks chosen by name (against a hand-written
mix), a block that returns a tuple (output_index), token ids refused at "input", ViTs in the image task."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixsuite.mixing import ManifoldMixup, MixPlan, apply_plan
from mixsuite.mixing.hooks import MixingLayerError

timm = pytest.importorskip("timm")


def tiny_vit():
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=4, depth=3, num_classes=5).eval()


def vit_by_hand(vit, x, mix_after: int, mix):
    """The ViT's forward written out, with `mix` applied to the token states after block `mix_after`."""
    t = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(x))))
    for i, block in enumerate(vit.blocks):
        t = block(t)
        if i == mix_after:
            t = mix(t)
    return vit.forward_head(vit.norm(t))


@pytest.mark.parametrize("per_sample", [False, True])
def test_vit_token_states_mixed_after_the_named_block(per_sample):
    vit, x = tiny_vit(), torch.randn(6, 3, 32, 32)
    mixer = ManifoldMixup(vit, layers=["blocks.1"], alpha=1.0, per_sample=per_sample,
                          generator=torch.Generator().manual_seed(2))
    with mixer.step(6) as plan:
        out = vit(x)
    lam = plan.lam.view(-1, 1, 1) if per_sample else plan.lam
    expected = vit_by_hand(vit, x, 1, lambda t: lam * t + (1 - lam) * t[plan.perm])  # (B, 1 + 64 tokens, 192)
    assert torch.allclose(out, expected, atol=1e-5)
    assert not torch.allclose(out, vit(x), atol=1e-3)


def test_vit_under_grad_checkpointing_gives_the_same_gradients():
    plain, ckpt = tiny_vit().train(), tiny_vit().train()
    ckpt.set_grad_checkpointing(True)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(5, (4,))
    grads = []
    for vit in (plain, ckpt):
        with apply_plan(vit, MixPlan("blocks.2", torch.tensor(0.6), torch.tensor([3, 2, 1, 0])), vit.blocks[2]):
            out = vit(x)
        F.cross_entropy(out, y).backward()
        grads.append({n: p.grad for n, p in vit.named_parameters()})
    for name, g in grads[0].items():
        assert torch.allclose(grads[1][name], g, atol=1e-5, rtol=1e-4), name


class TinyEncoder(nn.Module):
    """Token ids -> embedding -> self-attention (a module that returns (output, weights)) -> a classifier."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(11, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, ids, mix_attn=None, mix_embed=None):
        h = self.embed(ids)
        h = mix_embed(h) if mix_embed else h
        a, self.weights = self.attn(h, h, h)
        a = mix_attn(a) if mix_attn else a
        return self.head((h + a).mean(1))


def test_a_tuple_output_is_mixed_at_output_index_and_the_rest_passes_through():
    model, ids = TinyEncoder(), torch.randint(11, (6, 5))
    model(ids)
    clean_weights = model.weights
    mixer = ManifoldMixup(model, layers=["attn"], alpha=1.0, output_index=0, generator=torch.Generator().manual_seed(1))
    with mixer.step(6) as plan:
        out = model(ids)
    assert torch.equal(model.weights, clean_weights)  # the attention weights (item 1) untouched
    expected = model(ids, mix_attn=lambda a: plan.lam * a + (1 - plan.lam) * a[plan.perm])
    assert torch.allclose(out, expected, atol=1e-6)
    no_index = ManifoldMixup(model, layers=["attn"], alpha=1.0)
    with pytest.raises(MixingLayerError, match="set output_index"):
        with no_index.step(6):
            model(ids)


def test_token_ids_at_input_are_refused_naming_the_embedding():
    model, ids = TinyEncoder(), torch.randint(11, (6, 5))
    mixer = ManifoldMixup(model, layers=["input"], alpha=1.0)
    with pytest.raises(MixingLayerError, match=r"integer tensor .*name the embedding module instead, e.g. "
                                               r"layers=\['embed'\]"):
        with mixer.step(6):
            model(ids)
    embed = ManifoldMixup(model, layers=["embed"], alpha=1.0, generator=torch.Generator().manual_seed(1))
    with embed.step(6) as plan:
        out = model(ids)
    assert torch.allclose(out, model(ids, mix_embed=lambda h: plan.lam * h + (1 - plan.lam) * h[plan.perm]), atol=1e-6)


def test_a_vit_trains_in_the_image_task_at_32px(shared_data, tmp_path):
    from conftest import ROOT
    from mixsuite.config import build_config
    from mixsuite.runner import run
    from mixsuite.task import resolve

    task = resolve(str(ROOT / "tasks" / "image")).load()
    cfg = build_config(task.Config, [ROOT / "configs/image/smoke.yaml"],
                       ["model=timm:vit_tiny_patch16_224", "mix_layers=[input,blocks.3,blocks.7]", "epochs=1",
                        "train_per_class=4", "test_per_class=4", "batch_size=20", "sv_points=40",
                        f"data_root={shared_data}", "plots=false", "progress=false"])
    rec = run(task, cfg, results_dir=tmp_path / "res", runs_dir=tmp_path / "runs", log=lambda m: None)
    assert rec["status"] == "finished" and np.isfinite(rec["metrics"]["test_nll"])
    assert rec["config"]["model"] == "timm:vit_tiny_patch16_224"


def test_cutmix_pastes_integer_images_the_check_is_for_interpolation_only():
    from mixsuite.mixing import CutMix

    net, x = nn.Identity(), torch.randint(256, (4, 3, 8, 8), dtype=torch.uint8)
    with CutMix(net, alpha=1.0, image_size=(8, 8), generator=torch.Generator().manual_seed(0)).step(4) as plan:
        out = net(x)
    y0, y1, x0, x1 = plan.box
    assert out.dtype == torch.uint8 and torch.equal(out[:, :, y0:y1, x0:x1], x[plan.perm][:, :, y0:y1, x0:x1])
