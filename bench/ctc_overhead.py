"""A full training step of the handwriting model with mixed CTC (manifold mixup at a random conv block) vs plain
CTC, at the same batch, interleaved, medians after warm-up.

    python bench/ctc_overhead.py            # the paper's gated model, batch 16 lines of 64 x 704 px, 30 steps each
    python bench/ctc_overhead.py --quick    # a few steps, to check it runs

Prints the figures, then one JSON line: {"time_ratio": ...}. Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from _repo import ROOT  # noqa: E402  (first: the checkout's mixsuite importable)

from mixsuite.mixing import build_mixer, mixed_ctc_loss  # noqa: E402
from mixsuite.task import use_task_folders  # noqa: E402

use_task_folders(ROOT / "tasks")
from mixsuite.plugins.handwriting.model import build_model, frames  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--model", default="gated")
    args = p.parse_args()
    steps, warmup = (3, 1) if args.quick else (args.steps, 5)
    torch.manual_seed(0)
    n_classes, b = 100, args.batch
    net = build_model(args.model, n_classes, 1, 128, 0.2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(b, 1, 64, 704)
    widths = torch.randint(400, 705, (b,))
    tlens = torch.randint(10, 40, (b,))
    targets = torch.randint(1, n_classes, (b, 40))
    mixers = {"plain": build_mixer("erm", net),
              "mixed": build_mixer("manifold", net, alpha=2.0, layers=["input", "block1", "block2", "block3"],
                                   generator=torch.Generator().manual_seed(0))}

    def step(kind: str) -> float:
        t0 = time.perf_counter()
        with mixers[kind].step(b) as plan:
            lp = net(x)
        lengths = frames(widths)
        if plan.active:
            loss = mixed_ctc_loss(lp, targets, tlens, targets[plan.perm], tlens[plan.perm],
                                  torch.maximum(lengths, lengths[plan.perm]), plan.lam)
        else:
            loss = F.ctc_loss(lp, targets, lengths, tlens, zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    times = {"plain": [], "mixed": []}
    for i in range(warmup + steps):
        for kind in (("plain", "mixed") if i % 2 == 0 else ("mixed", "plain")):   # interleaved, order alternating
            t = step(kind)
            if i >= warmup:
                times[kind].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.model} model, batch {b} x 64 x 704: plain CTC step {1000 * med['plain']:.1f} ms, "
          f"mixed CTC + manifold mixup step {1000 * med['mixed']:.1f} ms (medians of {steps}, threads "
          f"{torch.get_num_threads()})")
    print(json.dumps({"time_ratio": round(med["mixed"] / med["plain"], 4), "plain_ms": round(1000 * med["plain"], 1),
                      "mixed_ms": round(1000 * med["mixed"], 1)}))


if __name__ == "__main__":
    main()
