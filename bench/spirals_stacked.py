"""Wall time of the spirals alpha x S grid (results/search/spirals-grid: manifold mixup, 6 alphas x 6 sets S, 5 seeds a
cell) two ways: one run a seed (what `mixsuite sweep` does in one process) and each cell's seeds as one stacked model
(`seeds_batch=5`, mixsuite.stacked).

    python bench/spirals_stacked.py                          # the whole grid, 180 runs each way (the grid's configs)
    python bench/spirals_stacked.py --cells 2 --epochs 3     # a check that it runs

Both ways run in this process at the same thread count (a short run of each first, so neither pays for imports),
into their own temporary results folders, with the grid's configs (plots and the figure's ERM contrast included,
as its records were made; `--no-plots` leaves the figures out). It checks that the two ways wrote the same numbers
(stacked seeds give the per-seed records exactly on CPU) and prints a JSON line last: {"cells": ..., "seeds": ...,
"epochs": ..., "per_seed_s": ..., "stacked_s": ..., "speedup": ..., "same_metrics": true, "threads": ...}.
Run it on an otherwise idle machine.
"""
from __future__ import annotations

import _repo  # noqa: F401  (the checkout's mixsuite)

import argparse
import itertools
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from mixsuite.config import build_config
from mixsuite.runner import run
from mixsuite.stacked import run_stacked
from mixsuite.task import resolve

ROOT = Path(__file__).resolve().parents[1]
ALPHAS = ["0.1", "0.2", "0.5", "1", "2", "4"]
SETS = ["[input]", "[hidden1]", "[bottleneck]", "[input,hidden1]", "[hidden1,hidden2,bottleneck]",
        "[input,hidden1,hidden2,bottleneck]"]


def grid_configs(task_cls, cells: int, extra: list[str]) -> list:
    combos = list(itertools.product(ALPHAS, SETS))[:cells]
    return [build_config(task_cls.Config, [], ["method=manifold", f"alpha={a}", f"mix_layers={s}", "progress=false",
                                               "log_every=100000", *extra]) for a, s in combos]


def one_run_a_seed(task_cls, cfgs: list, seeds: list[int], out: Path) -> list[dict]:
    return [run(task_cls, replace(cfg, seed=s), results_dir=out, runs_dir=out / "runs", resume="never",
                log=lambda _: None) for s in seeds for cfg in cfgs]   # seed by seed, as a sweep orders its points


def stacked(task_cls, cfgs: list, seeds: list[int], out: Path) -> list[dict]:
    return [r for cfg in cfgs for r in run_stacked(
        task_cls, [replace(cfg, seed=s, seeds_batch=len(seeds)) for s in seeds], results_dir=out,
        runs_dir=out / "runs", resume="never", log=lambda _: None)]


def timed(way, task_cls, cfgs, seeds, out: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    records = way(task_cls, cfgs, seeds, out)
    return time.perf_counter() - t0, {r["run_id"]: r["metrics"] for r in records}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", type=int, default=36, help="the first N cells of the 36 (default: all)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 a cell (default 5, as the grid)")
    p.add_argument("--epochs", type=int, default=None, help="default: the grid's (100)")
    p.add_argument("--no-plots", action="store_true", help="leave out the figures (and their ERM contrast)")
    args = p.parse_args()
    task_cls = resolve(str(ROOT / "tasks" / "spirals")).load()
    extra = ([f"epochs={args.epochs}"] if args.epochs else []) + (["plots=false"] if args.no_plots else [])
    cfgs, seeds = grid_configs(task_cls, args.cells, extra), list(range(args.seeds))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        warm = [replace(cfgs[0], epochs=1)]
        for name, way in (("per-seed", one_run_a_seed), ("stacked", stacked)):
            way(task_cls, warm, seeds[:2], tmp / f"warm-{name}")
        per_seed_s, alone = timed(one_run_a_seed, task_cls, cfgs, seeds, tmp / "per-seed")
        stacked_s, together = timed(stacked, task_cls, cfgs, seeds, tmp / "stacked")
    same = json.dumps(alone, sort_keys=True) == json.dumps(together, sort_keys=True)   # NaN equals NaN
    print(f"spirals grid, {len(cfgs)} cells x {len(seeds)} seeds x {cfgs[0].epochs} epochs "
          f"({torch.get_num_threads()} threads): one run a seed {per_seed_s:.1f} s, stacked {stacked_s:.1f} s, "
          f"{per_seed_s / stacked_s:.2f}x; same metrics: {same}")
    print(json.dumps({"cells": len(cfgs), "seeds": len(seeds), "epochs": cfgs[0].epochs, "plots": cfgs[0].plots,
                      "per_seed_s": round(per_seed_s, 1), "stacked_s": round(stacked_s, 1),
                      "speedup": round(per_seed_s / stacked_s, 2), "same_metrics": same,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
