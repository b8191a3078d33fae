"""Training-step time and peak memory of every mixing backend vs ERM: PreActResNet18 at full width, batch 128,
3x32x32, SGD (Nesterov), soft-target cross-entropy. Each backend as the image task builds it (`method=...`:
its paper's alpha, layers and options; manifold at S = input, layer1, layer2).

Time: all methods in one process, steps interleaved (erm, manifold, patchup, ..., erm, ...), medians after
warm-up. Memory: on CUDA torch.cuda.max_memory_allocated per method; on CPU one fresh process per method, the
growth of the peak resident set (ru_maxrss) over the resident set just before the first step.

    OMP_NUM_THREADS=2 python bench/mixing_overhead.py            # the real measurement (quiet machine)
    python bench/mixing_overhead.py --quick                      # a check that it runs (narrow, small batch)
    python bench/mixing_overhead.py --methods erm manifold       # only some methods (erm is always measured)

The last line printed is JSON: {"time_ratio": ..., "mem_ratio": ..., "erm_images_per_s": ..., "methods": {name:
{"step_ms", "time_ratio", "peak_bytes", "mem_ratio"}}}; time_ratio and mem_ratio at the top are manifold's.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from _repo import ROOT  # noqa: E402  (first: the checkout's mixsuite importable)

from mixsuite.mixing import mixer_from_config, one_hot, soft_cross_entropy  # noqa: E402
from mixsuite.task import use_task_folders  # noqa: E402

use_task_folders(ROOT / "tasks")
from mixsuite.plugins.image.models import build_model  # noqa: E402
from mixsuite.plugins.image.task import ImageConfig  # noqa: E402

METHODS = ("erm", "input", "manifold", "cutmix", "patchup", "patchup-hard", "nfm", "alignmix", "fmix", "resizemix")


class OneGenerator:
    """What mixer_from_config asks of an engine: a seeded generator."""

    def generator(self, name):
        return torch.Generator().manual_seed(1)


def build(method, net, size=(32, 32)):
    """The image task's mixer for `method`, from its method table (its paper's alpha, layers and options)."""
    extra = {"image_size": size} if ImageConfig(method=method).mixing_backend() == "cutmix" else {}
    return mixer_from_config(ImageConfig(method=method), net, OneGenerator(), **extra)


def make(args, device, methods):
    torch.manual_seed(0)
    net = build_model("preactresnet18", 10, width=args.width).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    return net, opt, x, y, {m: build(m, net) for m in methods}


def train_step(net, opt, x, y, mixer):
    targets = one_hot(y, 10)
    with mixer.step(len(x), device=x.device) as plan:
        out = net(x)
    if plan.active:
        targets = plan.mix_targets(targets)
    loss = soft_cross_entropy(out, targets)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(args, device) -> dict:
    net, opt, x, y, mixers = make(args, device, args.methods)
    net.train()
    times = {m: [] for m in mixers}
    for i in range(args.warmup + args.steps):
        for m, mixer in mixers.items():
            sync(device)
            t0 = time.perf_counter()
            train_step(net, opt, x, y, mixer)
            sync(device)
            if i >= args.warmup:
                times[m].append(time.perf_counter() - t0)
    return {m: statistics.median(t) for m, t in times.items()}


def peak_memory(args, device, method: str) -> float:
    """Bytes: CUDA peak allocated during the steps, or CPU peak-RSS growth in a fresh process."""
    if device.type == "cuda":
        net, opt, x, y, mixers = make(args, device, [method])
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        for _ in range(args.warmup + args.mem_steps):
            train_step(net, opt, x, y, mixers[method])
        return float(torch.cuda.max_memory_allocated(device) - base)
    cmd = [sys.executable, __file__, "--worker", method, "--width", str(args.width), "--batch", str(args.batch),
           "--warmup", str(args.warmup), "--mem-steps", str(args.mem_steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_growth_bytes"])


def current_rss_kib() -> int:
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def worker(args) -> None:
    device = torch.device("cpu")
    net, opt, x, y, mixers = make(args, device, [args.worker])
    base = current_rss_kib()
    for _ in range(args.warmup + args.mem_steps):
        train_step(net, opt, x, y, mixers[args.worker])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_growth_bytes": (peak - base) * 1024}))      # ru_maxrss is in KiB on Linux


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="narrow model, small batch, few steps: a run check only")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=7, help="timed steps per method (median)")
    p.add_argument("--mem-steps", type=int, default=6, help="steps per method in the memory processes")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), metavar="METHOD",
                   help=f"methods to measure against erm (default: all of {', '.join(METHODS)})")
    p.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    if args.quick:
        args.width, args.batch, args.warmup, args.steps, args.mem_steps = 0.25, 32, 1, 5, 3
    args.methods = ["erm"] + [m for m in dict.fromkeys(args.methods) if m != "erm"]
    device = torch.device(args.device)
    med = time_interleaved(args, device)
    mem = {m: peak_memory(args, device, m) for m in args.methods}
    print(f"device={device} threads={torch.get_num_threads()} width={args.width} batch={args.batch} "
          f"steps={args.steps} (median); manifold at {LAYERS}, the others at their papers' layers")
    rows = {}
    for m in args.methods:
        rows[m] = {"step_ms": round(med[m] * 1e3, 2), "time_ratio": round(med[m] / med["erm"], 4),
                   "peak_bytes": mem[m], "mem_ratio": round(mem[m] / max(mem["erm"], 1.0), 4)}
        print(f"{m:12s} step {med[m] * 1e3:8.1f} ms ({rows[m]['time_ratio']:5.2f}x erm)  "
              f"{args.batch / med[m]:8.1f} images/s  peak memory growth {mem[m] / 2**20:8.1f} MiB "
              f"({rows[m]['mem_ratio']:5.2f}x erm)")
    summary = {"erm_images_per_s": round(args.batch / med["erm"], 2), "erm_step_ms": rows["erm"]["step_ms"],
               "erm_peak_bytes": mem["erm"]}
    if "manifold" in rows:
        summary.update(time_ratio=rows["manifold"]["time_ratio"], mem_ratio=rows["manifold"]["mem_ratio"],
                       manifold_step_ms=rows["manifold"]["step_ms"], manifold_peak_bytes=mem["manifold"])
    print(json.dumps({**summary, "methods": rows, "device": str(device), "width": args.width,
                      "batch": args.batch}))


if __name__ == "__main__":
    main()
