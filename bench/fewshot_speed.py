"""Few-shot training speed: images/s of one training epoch per method, and the time of one validation pass, on
the task's own code (its setup, train_epoch and evaluate), to plan a schedule before the long runs.

    OMP_NUM_THREADS=1 python bench/fewshot_speed.py -c configs/fewshot/omniglot-vinyals.yaml base_classes=1200

Prints wall-clock and process-CPU rates: on a shared machine the wall rate is what a run gets now, the CPU rate
what it gets on a free core. s2m2 is timed in its mixup stage (rotation on a quarter of the batch), which is
what its epochs after the rotation stage cost; rotation is its own method's step (4 rotations of the batch).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

import _repo  # noqa: E402,F401  (first: the checkout's mixsuite importable)

from mixsuite.config import build_config  # noqa: E402
from mixsuite.engine import Engine  # noqa: E402
from mixsuite.task import resolve  # noqa: E402


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", action="append", default=[], help="config file(s), as mixsuite run -c")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    p.add_argument("--methods", nargs="+", default=["baselinepp", "rotation", "manifold", "s2m2"])
    args = p.parse_args(argv)
    task_cls = resolve(str(Path(__file__).resolve().parents[1] / "tasks" / "fewshot")).load()
    print(f"threads {torch.get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')}), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| method | steps | images | wall s | images/s (wall) | images/s (CPU) | val pass wall s | val pass CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for method in args.methods:
        extra = ["rotation_epochs=0"] if method == "s2m2" else []
        cfg = build_config(task_cls.Config, args.config, [*args.overrides, f"method={method}", "progress=false",
                                                          *extra])
        with tempfile.TemporaryDirectory() as runs:
            engine = Engine(task_cls, cfg, runs_dir=runs, log=lambda m: None)
            task = task_cls(cfg, engine)
            task.setup()
            steps = len(task.train_loader)
            images = steps * cfg.batch_size
            _, wall, cpu = timed(lambda: task.train_epoch(1))
            _, vwall, vcpu = timed(lambda: task.evaluate(1))
        print(f"| {method} | {steps} | {images} | {wall:.1f} | {images / wall:.0f} | {images / cpu:.0f} | "
              f"{vwall:.1f} | {vcpu:.1f} |", flush=True)


if __name__ == "__main__":
    main()
