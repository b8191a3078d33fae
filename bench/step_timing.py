"""One training step of the image task's PreActResNet18, erm against manifold mixup (S = input, layer1, layer2), as
`bench/gpu_check.py`'s `step` check times it: median step time after warm-up, images/s, peak memory (CUDA) and
the ratios, eager or torch.compile'd (the mixer built first, then the model compiled, as users are told to)."""
from __future__ import annotations

import statistics
import time

import torch

from mixing_overhead import build, build_model, train_step   # bench/mixing_overhead.py: the image task's mixers


def time_steps(device: str, batch: int, width: float, steps: int, compiled: bool, warmup: int = 3) -> dict:
    device = torch.device(device)
    out = {}
    for method in ("erm", "manifold"):
        torch.manual_seed(0)
        net = build_model("preactresnet18", 10, width=width).to(device).train()
        if device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
        mixer = build(method, net)
        model = torch.compile(net) if compiled else net
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
        x = torch.randn(batch, 3, 32, 32, device=device)
        y = torch.randint(0, 10, (batch,), device=device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for i in range(warmup + steps):
            sync(device)
            t0 = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                train_step(model, opt, x, y, mixer)
            sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        step = statistics.median(times)
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        out[method] = {"step_ms": round(step * 1e3, 3), "images_per_s": round(batch / step, 1), "peak_bytes": peak}
    out["time_ratio"] = round(out["manifold"]["step_ms"] / out["erm"]["step_ms"], 4)
    if out["erm"]["peak_bytes"]:
        out["mem_ratio"] = round(out["manifold"]["peak_bytes"] / out["erm"]["peak_bytes"], 4)
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
