"""Wall time of the spirals alpha x S grid (results/search/spirals-grid: manifold mixup, 6 alphas x 6 sets S, 5 seeds a
cell) two ways: one run a seed, and each cell's seeds as one stacked model (`seeds_batch=5`, mixsuite.stacked).

    python bench/spirals_stacked.py                                   # the whole grid, 180 runs each way
    python bench/spirals_stacked.py --jobs 2                          # both ways in 2 worker processes
    python bench/spirals_stacked.py --alphas 0.1 --sets '[input],[hidden1]' --epochs 3   # a check that it runs

Each way is the grid's own command (results/spirals.md), `mixsuite sweep tasks/spirals method=manifold alpha=...
mix_layers=... --seeds 0 1 2 3 4`, the stacked one with `seeds_batch=5` added: a fresh process each, its own results
folder, the grid's configs (figures and their ERM contrast included, as its records were made; `--no-plots` leaves
them out), at the same thread count (`--jobs N`: N workers of cores/N threads each way). Timed from start to exit. It
checks that the two ways wrote the same numbers (stacked seeds give the per-seed records exactly on CPU) and prints a
JSON line last: {"cells": ..., "seeds": ..., "epochs": ..., "jobs": ..., "plots": ..., "per_seed_s": ...,
"stacked_s": ..., "speedup": ..., "same_metrics": true}. Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALPHAS = "0.1,0.2,0.5,1,2,4"
SETS = "[input],[hidden1],[bottleneck],[input,hidden1],[hidden1,hidden2,bottleneck],[input,hidden1,hidden2,bottleneck]"


def timed_sweep(grid: list[str], seeds: int, jobs: int, out: Path) -> float:
    cmd = [sys.executable, "-m", "mixsuite", "sweep", str(ROOT / "tasks" / "spirals"), "method=manifold", *grid,
           "log_every=100000", "--seeds", *map(str, range(seeds)), "--jobs", str(jobs),
           "--results-dir", str(out / "results"), "--runs-dir", str(out / "runs")]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def records(out: Path) -> dict:
    found = (json.loads(p.read_text()) for p in (out / "results" / "runs" / "spirals").glob("*.json"))
    return {r["run_id"]: r for r in found}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alphas", default=ALPHAS, help=f"the alpha axis (default the grid's: {ALPHAS})")
    p.add_argument("--sets", default=SETS, help="the mix_layers axis (default the grid's six sets)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 a cell, one stacked batch (default 5)")
    p.add_argument("--epochs", type=int, default=None, help="default: the grid's (the task's default)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes, each way (default 1: in one process)")
    p.add_argument("--no-plots", action="store_true", help="leave out the figures (and their ERM contrast)")
    args = p.parse_args()
    grid = [f"alpha={args.alphas}", f"mix_layers={args.sets}"] + ([f"epochs={args.epochs}"] if args.epochs else []) \
        + (["plots=false"] if args.no_plots else [])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        per_seed_s = timed_sweep(grid, args.seeds, args.jobs, tmp / "per-seed")
        stacked_s = timed_sweep(grid + [f"seeds_batch={args.seeds}"], args.seeds, args.jobs, tmp / "stacked")
        alone, together = records(tmp / "per-seed"), records(tmp / "stacked")
    same = json.dumps({k: r["metrics"] for k, r in alone.items()}, sort_keys=True) == \
        json.dumps({k: r["metrics"] for k, r in together.items()}, sort_keys=True)   # NaN equals NaN
    cells, epochs = len(alone) // args.seeds, next(iter(alone.values()))["config"]["epochs"]
    print(f"spirals grid, {cells} cells x {args.seeds} seeds x {epochs} epochs, --jobs {args.jobs} "
          f"({os.cpu_count()} cores): one run a seed {per_seed_s:.1f} s, stacked {stacked_s:.1f} s, "
          f"{per_seed_s / stacked_s:.2f}x; same metrics: {same}")
    print(json.dumps({"cells": cells, "seeds": args.seeds, "epochs": epochs, "jobs": args.jobs,
                      "plots": not args.no_plots, "per_seed_s": round(per_seed_s, 1), "stacked_s": round(stacked_s, 1),
                      "speedup": round(per_seed_s / stacked_s, 2), "same_metrics": same}))


if __name__ == "__main__":
    main()
