"""Training-step time of the CPU tasks' conv nets in the default (NCHW) layout against channels_last (NHWC).

On CUDA the engine puts 4-D models and inputs in channels_last (`channels_last: true`); on CPU only when a config
sets `cpu_channels_last: true`. This bench measures whether the CPU should: for each model, two copies with the same
weights, one per layout, train on the same batch with the same mixing draws, their steps interleaved; medians after
warm-up. The first step's losses of the two layouts are printed beside each other (they differ by rounding only).

    python bench/memory_format.py                      # the machine's threads
    OMP_NUM_THREADS=1 python bench/memory_format.py    # one thread, as each of `--jobs 2`'s workers trains
    python bench/memory_format.py --quick              # a check that it runs

Models: the image task's PreActResNet18 at width 1/4 (batch 100, 3x32x32; configs/image/cpu-overfit*.yaml) and
Conv-4 (batch 112, 1x28x28; the few-shot and metric CPU configs), each with erm and with manifold mixup.
The last line printed is JSON: {"<model>/<method>": {"nchw_ms", "nhwc_ms", "speedup"}, ...}.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
import torch.nn.functional as F

from _repo import ROOT  # noqa: E402  (first: the checkout's mixsuite importable)

from mixsuite.mixing import build_mixer  # noqa: E402
from mixsuite.models.conv4 import Conv4  # noqa: E402
from mixsuite.task import use_task_folders  # noqa: E402

use_task_folders(ROOT / "tasks")
from mixsuite.plugins.image.models import build_model  # noqa: E402


class Conv4Classifier(torch.nn.Module):
    def __init__(self, classes: int = 56):
        super().__init__()
        self.backbone, self.head = Conv4(1), torch.nn.Linear(64, classes)

    def forward(self, x):
        return self.head(self.backbone(x))


MODELS = {  # name: (build, input shape, classes, manifold mixup's layers)
    "preactresnet18-w0.25": (lambda: build_model("preactresnet18", 10, width=0.25), (100, 3, 32, 32), 10,
                             ["input", "layer1", "layer2"]),
    "conv4": (lambda: Conv4Classifier(56), (112, 1, 28, 28), 56, ["input", "backbone.block1", "backbone.block2"]),
}


def make_pair(name: str, method: str, batch: int | None):
    build, shape, classes, layers = MODELS[name]
    torch.manual_seed(0)
    nets = {"nchw": build()}
    nets["nhwc"] = copy.deepcopy(nets["nchw"]).to(memory_format=torch.channels_last)
    shape = (batch or shape[0], *shape[1:])
    x, y = torch.randn(shape), torch.randint(classes, (shape[0],))
    inputs = {"nchw": x, "nhwc": x.contiguous(memory_format=torch.channels_last)}
    pairs = {}
    for layout, net in nets.items():
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
        mixer = build_mixer(method, net, alpha=2.0, layers=layers if method == "manifold" else None,
                            generator=torch.Generator().manual_seed(1))
        pairs[layout] = (net, opt, inputs[layout], mixer)
    return pairs, y


def train_step(net, opt, x, y, mixer) -> float:
    with mixer.step(len(x), device=x.device) as plan:
        out = net(x)
    loss = plan.mix_loss(F.cross_entropy, out, y) if plan.active else F.cross_entropy(out, y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def measure(name: str, method: str, warmup: int, steps: int, batch: int | None) -> dict:
    pairs, y = make_pair(name, method, batch)
    first = {layout: train_step(*pair[:3], y, pair[3]) for layout, pair in pairs.items()}
    times = {layout: [] for layout in pairs}
    for i in range(warmup + steps):
        for layout, (net, opt, x, mixer) in pairs.items():
            t0 = time.perf_counter()
            train_step(net, opt, x, y, mixer)
            if i >= warmup:
                times[layout].append(time.perf_counter() - t0)
    med = {layout: statistics.median(t) for layout, t in times.items()}
    return {"nchw_ms": round(1e3 * med["nchw"], 2), "nhwc_ms": round(1e3 * med["nhwc"], 2),
            "speedup": round(med["nchw"] / med["nhwc"], 3), "first_loss": [round(first["nchw"], 6),
                                                                           round(first["nhwc"], 6)]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small batches, few steps: a run check only")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=9, help="timed steps per layout (median)")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = p.parse_args()
    batch = 8 if args.quick else None
    if args.quick:
        args.warmup, args.steps = 1, 2
    print(f"threads={torch.get_num_threads()} torch={torch.__version__}")
    out = {}
    for name in args.models:
        for method in ("erm", "manifold"):
            row = out[f"{name}/{method}"] = measure(name, method, args.warmup, args.steps, batch)
            print(f"{name:<22} {method:<9} NCHW {row['nchw_ms']:9.2f} ms  NHWC {row['nhwc_ms']:9.2f} ms  "
                  f"speedup {row['speedup']:.3f}  first losses {row['first_loss']}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
