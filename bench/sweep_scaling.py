"""Wall time of one spirals sweep (8 points: 2 alphas x 2 layer sets x 2 seeds) three ways: one after another in
one process, in 2 worker processes (`--jobs 2`), and as Ray tasks on a local Ray instance (`--ray`: one CPU per point, as
many at once as the machine has cores, 2 on the 2-core machine the figures are for).

    python bench/sweep_scaling.py                       # 8 points of 30 epochs each way
    python bench/sweep_scaling.py --epochs 2            # a check that it runs (seconds per point)

Each way is `mixsuite sweep` run as a user would (a fresh process, its own results folder, one thread per point so
the three ways compute the same numbers), timed from start to exit, start-up included: Ray's start (a few seconds)
and the workers' imports are part of what a user waits for. It prints the speedups over the in-process way, checks
that the three ways wrote the same metrics, and a JSON line last: {"points": 8, "epochs": ..., "in_process_s": ...,
"jobs2_s": ..., "ray2_s": ..., "speedup_jobs2": ..., "speedup_ray2": ..., "same_metrics": true}. Needs the ray
extra (`pip install -e ".[ray]"`). Run it on an otherwise idle machine.
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
GRID = ["alpha=0.5,2", "mix_layers=[hidden1],[hidden1,bottleneck]"]
WAYS = {"in_process": [], "jobs2": ["--jobs", "2"], "ray2": ["--ray", "--ray-cpus", "1"]}


def timed_sweep(extra: list[str], epochs: int, out: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "mixsuite", "sweep", str(ROOT / "tasks" / "spirals"), *GRID, f"epochs={epochs}",
           "plots=false", "log_every=100000", "--seeds", "1", "2", "--results-dir", str(out / "results"),
           "--runs-dir", str(out / "runs"), *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def metrics(out: Path) -> dict:
    return {p.name: json.loads(p.read_text())["metrics"] for p in (out / "results" / "runs" / "spirals").glob("*.json")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=30)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seconds = {way: timed_sweep(extra, args.epochs, tmp / way) for way, extra in WAYS.items()}
        found = {way: metrics(tmp / way) for way in WAYS}
    same = len(found["in_process"]) == 8 and all(found[way] == found["in_process"] for way in WAYS)
    base = seconds["in_process"]
    print(f"8 spirals points x {args.epochs} epochs ({os.cpu_count()} cores): in-process {base:.1f} s, "
          f"--jobs 2 {seconds['jobs2']:.1f} s ({base / seconds['jobs2']:.2f}x), Ray with {os.cpu_count()} CPUs "
          f"{seconds['ray2']:.1f} s ({base / seconds['ray2']:.2f}x); same metrics: {same}")
    print(json.dumps({"points": 8, "epochs": args.epochs, **{f"{w}_s": round(s, 1) for w, s in seconds.items()},
                      "speedup_jobs2": round(base / seconds["jobs2"], 2),
                      "speedup_ray2": round(base / seconds["ray2"], 2), "same_metrics": same}))


if __name__ == "__main__":
    main()
