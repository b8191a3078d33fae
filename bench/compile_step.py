"""What torch.compile gains for the image task's training step: PreActResNet18, ERM and manifold mixup (S = input,
layer1, layer2), eager against compiled (inductor; the mixer built first, then the model compiled), in one run.

    python bench/compile_step.py                                    # CPU-sized: width 0.25, batch 64
    python bench/compile_step.py --width 0.0625 --batch 8 --steps 2 --warmup 6   # toy size (seconds of steps)

The step time is the median over --steps steps after --warmup steps (the compiled model compiles a graph for each
layer of S during the warm-up: give it enough steps to draw all three). Prints images/s per method and mode, the
compiled/eager speedup and the manifold/erm time ratio of each mode, then the same as one JSON line. Time it on an
idle machine; torch's thread count is printed with it (a result holds for that count).
"""
from __future__ import annotations

import _repo  # noqa: F401  (the checkout's mixsuite)
import argparse
import json

import torch

from step_timing import time_steps   # bench/step_timing.py: the step gpu_check's step:eager/compiled times


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--width", type=float, default=0.25, help="PreActResNet18 width multiplier (1.0: the paper's)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="timed steps (the median is reported)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (compilation happens here)")
    args = p.parse_args(argv)
    modes = {mode: time_steps(args.device, args.batch, args.width, args.steps, mode == "compiled", args.warmup)
             for mode in ("eager", "compiled")}
    result = {"device": args.device, "threads": torch.get_num_threads(), "width": args.width, "batch": args.batch,
              "steps": args.steps, "warmup": args.warmup}
    print(f"PreActResNet18 width {args.width}, batch {args.batch}, {args.device}, {result['threads']} threads")
    print(f"{'method':<10}{'eager img/s':>14}{'compiled img/s':>16}{'speedup':>10}")
    for method in ("erm", "manifold"):
        eager, comp = modes["eager"][method]["images_per_s"], modes["compiled"][method]["images_per_s"]
        speedup = round(comp / eager, 3)
        result[method] = {"eager_images_per_s": eager, "compiled_images_per_s": comp, "speedup": speedup}
        print(f"{method:<10}{eager:>14.1f}{comp:>16.1f}{speedup:>10.3f}")
    for mode in ("eager", "compiled"):
        result[f"manifold_over_erm_{mode}"] = modes[mode]["time_ratio"]
        print(f"manifold / erm step time, {mode}: {modes[mode]['time_ratio']:.3f}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
