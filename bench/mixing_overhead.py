"""Training-step time and peak memory of manifold mixup vs ERM: PreActResNet18 at full width, batch 128,
3x32x32, SGD (Nesterov), soft-target cross-entropy.

Time: both methods in one process, steps interleaved (erm, manifold, erm, ...), medians after warm-up.
Memory: on CUDA torch.cuda.max_memory_allocated per method; on CPU one fresh process per method, the growth
of the peak resident set (ru_maxrss) over the resident set just before the first step.

    OMP_NUM_THREADS=2 python bench/mixing_overhead.py            # the real measurement (quiet machine)
    python bench/mixing_overhead.py --quick                      # a check that it runs (narrow, small batch)

The last line printed is JSON: {"time_ratio": ..., "mem_ratio": ..., "erm_images_per_s": ...}.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mixsuite.mixing import build_mixer, one_hot, soft_cross_entropy  # noqa: E402
from tasks.image.models import build_model  # noqa: E402

LAYERS = ["input", "layer1", "layer2"]


def make(args, device):
    torch.manual_seed(0)
    net = build_model("preactresnet18", 10, width=args.width).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    mixers = {m: build_mixer(m, net, alpha=2.0, layers=LAYERS if m == "manifold" else None,
                             generator=torch.Generator().manual_seed(1)) for m in ("erm", "manifold")}
    return net, opt, x, y, mixers


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
    net, opt, x, y, mixers = make(args, device)
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
        net, opt, x, y, mixers = make(args, device)
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
    net, opt, x, y, mixers = make(args, device)
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
    p.add_argument("--worker", choices=["erm", "manifold"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    if args.quick:
        args.width, args.batch, args.warmup, args.steps, args.mem_steps = 0.25, 32, 1, 5, 3
    device = torch.device(args.device)
    med = time_interleaved(args, device)
    mem = {m: peak_memory(args, device, m) for m in ("erm", "manifold")}
    print(f"device={device} threads={torch.get_num_threads()} width={args.width} batch={args.batch} "
          f"steps={args.steps} (median) mixing points {LAYERS}")
    for m in med:
        print(f"{m:9s} step {med[m] * 1e3:8.1f} ms  {args.batch / med[m]:8.1f} images/s  "
              f"peak memory growth {mem[m] / 2**20:8.1f} MiB")
    print(json.dumps({"time_ratio": round(med["manifold"] / med["erm"], 4),
                      "mem_ratio": round(mem["manifold"] / max(mem["erm"], 1.0), 4),
                      "erm_images_per_s": round(args.batch / med["erm"], 2),
                      "erm_step_ms": round(med["erm"] * 1e3, 2), "manifold_step_ms": round(med["manifold"] * 1e3, 2),
                      "erm_peak_bytes": mem["erm"], "manifold_peak_bytes": mem["manifold"],
                      "device": str(device), "width": args.width, "batch": args.batch}))


if __name__ == "__main__":
    main()
