"""Under Accelerate the mixer is built on the unwrapped model and registered for checkpointing: the loop gives the
hand-written loop's losses and plans, and `load_state` brings the mixer's draws back with the rest."""
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

accelerate = pytest.importorskip("accelerate")
from mixsuite.mixing import ManifoldMixup  # noqa: E402


def setup():
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict(layer1=nn.Sequential(nn.Linear(6, 32), nn.ReLU()), head=nn.Linear(32, 3)))
    return net, torch.optim.SGD(net.parameters(), lr=0.1)


def batches(n=4):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 16, 6, generator=g)
    return list(zip(x, (x[..., 0] > 0).long()))


def train(model, optimizer, mixer, data, backward=lambda loss: loss.backward()):
    seen = []
    for x, y in data:
        with mixer.step(len(x)) as plan:
            out = model(x)
        loss = plan.mix_loss(F.cross_entropy, out, y)
        optimizer.zero_grad()
        backward(loss)
        optimizer.step()
        seen.append((loss.item(), plan.layer, float(plan.lam)))
    return seen


def test_accelerate_loop_equals_the_hand_loop_and_its_state_restores_the_draws(tmp_path):
    net, optimizer = setup()
    expected = train(net, optimizer, ManifoldMixup(net, layers=["input", "layer1"], alpha=2.0,
                                                   generator=torch.Generator().manual_seed(7)), batches())

    accelerator = accelerate.Accelerator(cpu=True)
    net, optimizer = setup()
    model, optimizer = accelerator.prepare(net, optimizer)
    mixer = ManifoldMixup(accelerator.unwrap_model(model), layers=["input", "layer1"], alpha=2.0,
                          generator=torch.Generator().manual_seed(7))
    accelerator.register_for_checkpointing(mixer)
    data = batches()
    seen = train(model, optimizer, mixer, data[:2], accelerator.backward)
    accelerator.save_state(tmp_path / "state")
    seen += train(model, optimizer, mixer, data[2:], accelerator.backward)
    assert [s[1:] for s in seen] == [s[1:] for s in expected]
    assert [s[0] for s in seen] == pytest.approx([s[0] for s in expected], rel=1e-6)

    accelerator.load_state(tmp_path / "state")   # back to after step 2: the last two steps again, the same draws
    again = train(model, optimizer, mixer, data[2:], accelerator.backward)
    assert [s[1:] for s in again] == [s[1:] for s in expected[2:]]
    assert [s[0] for s in again] == pytest.approx([s[0] for s in expected[2:]], rel=1e-6)
