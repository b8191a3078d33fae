"""GraphMix(GCN) seeds stacked (tasks/graphmix/stacked.py) against one run a seed, on Cora: seconds a seed.

    python bench/graphmix_stacked.py --sizes 1 10 100                  # 2000 epochs: the figure issue 46 asks for
    python bench/graphmix_stacked.py --sizes 1 4 --epochs 20 --baseline-seeds 2   # to check that it runs

The baseline trains `--baseline-seeds` seeds one after another through `mixsuite.runner.run` (the engine, metrics,
checkpoints, records), in this process; each size S trains seeds 1..S as one stacked model. Timed: wall and process
CPU seconds (CPU time is the closer figure on a busy machine). Prints a line a size with its seconds a seed, its
speed-up over the baseline and the mean best_test_acc of its seeds, then one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from _repo import ROOT  # noqa: E402  (first: the checkout's mixsuite importable)

from mixsuite import runner  # noqa: E402
from mixsuite.config import build_config  # noqa: E402
from mixsuite.task import resolve  # noqa: E402


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100])
    p.add_argument("--epochs", type=int, default=2000)
    p.add_argument("--dataset", default="cora")
    p.add_argument("--method", default="graphmix", choices=["graphmix", "gcn"])
    p.add_argument("--baseline-seeds", type=int, default=3)
    args = p.parse_args()
    os.environ.setdefault("MIXSUITE_DATA", str(ROOT.parent / "shared" / "data"))
    task = resolve(str(ROOT / "tasks" / "graphmix")).load()
    from mixsuite.plugins.graphmix.stacked import train_stacked

    def cfg(seed):
        return build_config(task.Config, [], [f"dataset={args.dataset}", f"method={args.method}", f"epochs={args.epochs}",
                                              "progress=false", "device=cpu", f"seed={seed}"])

    with tempfile.TemporaryDirectory() as tmp:
        runner.run(task, build_config(task.Config, [], ["epochs=2", "progress=false", "device=cpu"]),
                   results_dir=Path(tmp) / "warm", runs_dir=Path(tmp) / "warm", log=lambda *a: None)   # caches
        base = [timed(lambda s=s: runner.run(task, cfg(s), results_dir=Path(tmp) / "r", runs_dir=Path(tmp) / "runs",
                                               log=lambda *a: None)) for s in range(1, args.baseline_seeds + 1)]
        base_wall = statistics.mean(b[1] for b in base)
        base_cpu = statistics.mean(b[2] for b in base)
        print(f"one run a seed: {base_wall:.2f} s a seed ({base_cpu:.2f} s CPU), {args.baseline_seeds} seeds", flush=True)
        rows = []
        for size in args.sizes:
            results, wall, cpu = timed(lambda: train_stacked(task, [cfg(s) for s in range(1, size + 1)], Path(tmp) / "s"))
            acc = statistics.mean(r["best_test_acc"] for r in results)
            rows.append({"seeds_batch": size, "seconds_per_seed": round(wall / size, 3),
                         "cpu_seconds_per_seed": round(cpu / size, 3), "speedup": round(base_wall * size / wall, 2),
                         "cpu_speedup": round(base_cpu * size / cpu, 2), "mean_best_test_acc": round(acc, 4)})
            r = rows[-1]
            print(f"S={size:<4} {r['seconds_per_seed']:7.3f} s a seed ({r['cpu_seconds_per_seed']:.3f} s CPU)  "
                  f"x{r['speedup']} (CPU x{r['cpu_speedup']})  mean best_test_acc {acc:.4f}", flush=True)
    print(json.dumps({"dataset": args.dataset, "method": args.method, "epochs": args.epochs,
                      "threads": os.environ.get("OMP_NUM_THREADS", "default"),
                      "baseline_seconds_per_seed": round(base_wall, 3), "baseline_cpu_seconds_per_seed": round(base_cpu, 3),
                      "sizes": rows}))


if __name__ == "__main__":
    main()
