"""The library's generic backbones build what the tasks built before they moved out of tasks/fewshot and
tasks/image (same state-dict keys, same initial weights for a seed, same outputs), so recorded runs reproduce."""
import hashlib

import pytest
import torch

from mixsuite.models import Conv4, ResNet12, WideResNet

# Measured with the code at 1babab5 (tasks/fewshot/backbones.py's Conv4, ResNet12, WRN(3, 10, 2, 0.3) and
# tasks/image/wide_resnet.py's WideResNet(10, 2, num_classes=10, width=0.5, drop_rate=0.2, stem_stride=2)),
# built after torch.manual_seed(0), fed torch.manual_seed(1); torch.randn(2, C, 28, 28) in eval mode:
# sha1 of the space-joined state-dict keys, sum of |every float tensor|, sum of |output|.
BEFORE = {
    "conv4": ("feac4c7fae4c", 438.1623141286291, 1.2257952996296808),
    "resnet12": ("5b0211b2256f", 2066.375604967477, 9.536058812911506),
    "wrn-paper": ("758138852c76", 7203.956952486089, 4.3995207529160325),
    "manifold-mixup-code": ("5a5a198b9029", 2730.516932570839, 1.0572057757526636),
}
BUILD = {
    "conv4": (lambda: Conv4(1, 16), 1),
    "resnet12": (lambda: ResNet12(3, (8, 16, 16, 32)), 3),
    "wrn-paper": (lambda: WideResNet(10, 2, in_channels=3, drop_rate=0.3, layout="wrn-paper", stem_name="stem",
                                     stage_names=("block1", "block2", "block3")), 3),
    "manifold-mixup-code": (lambda: WideResNet(10, 2, num_classes=10, width=0.5, drop_rate=0.2, stem_stride=2,
                                               layout="manifold-mixup-code"), 3),
}


@pytest.mark.parametrize("name", list(BEFORE))
def test_moved_backbones_build_the_same_weights_and_outputs(name):
    build, channels = BUILD[name]
    torch.manual_seed(0)
    net = build()
    torch.manual_seed(1)
    x = torch.randn(2, channels, 28, 28)
    sd = net.state_dict()
    keys, weights, out = BEFORE[name]
    assert hashlib.sha1(" ".join(sd).encode()).hexdigest()[:12] == keys
    assert sum(v.double().abs().sum().item() for v in sd.values() if v.is_floating_point()) == pytest.approx(weights,
                                                                                                            rel=1e-9)
    with torch.no_grad():
        assert net.eval()(x).double().abs().sum().item() == pytest.approx(out, rel=1e-5)


def test_wrn_layouts_differ_and_bad_arguments_are_named():
    torch.manual_seed(0)
    paper = WideResNet(10, 2, layout="wrn-paper")
    torch.manual_seed(0)
    code = WideResNet(10, 2, layout="manifold-mixup-code")
    assert torch.equal(paper.layer2[0].conv1.weight, code.layer2[0].conv1.weight)   # same draws ...
    assert paper.layer2[0].conv1.stride == (2, 2) and code.layer2[0].conv2.stride == (2, 2)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(paper.eval()(x), code.eval()(x))                   # ... another network
    assert paper(x).shape == (2, paper.out_dim) and paper.out_dim == 128             # no classifier: features
    with pytest.raises(ValueError, match="6n"):
        WideResNet(12, 2)
    with pytest.raises(ValueError, match="layout"):
        WideResNet(10, 2, layout="resnet")
