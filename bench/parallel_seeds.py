"""Wall time of several GraphMix(GCN) seeds on Cora: one after another (`--jobs 1`) against side by side (`--jobs 2`).

    python bench/parallel_seeds.py                 # 4 seeds of 500 epochs each way
    python bench/parallel_seeds.py --seeds 2 --epochs 200

Runs `mixsuite run` as a user would (a fresh process each way, the default threads for --jobs 1, one thread per
worker for --jobs 2) and prints one JSON line last: {"speedup": ..., "sequential_s": ..., "parallel_s": ...,
"seeds": ..., "epochs": ..., "max_diff_best_test_acc": ...}. The two ways use different thread counts, which
change the order of float sums; over hundreds of epochs that can move a seed's accuracy by a node or two, so the
last figure says how far apart the two ways' results are (at equal thread counts they are identical: see
tests/test_cli_and_plugins.py).
Run it on an otherwise idle machine.
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


def timed_run(jobs: int, seeds: list[int], epochs: int, out: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # each way picks its own threads
    env.setdefault("MIXSUITE_DATA", str(ROOT.parent / "shared" / "data"))
    cmd = [sys.executable, "-m", "mixsuite", "run", str(ROOT / "tasks" / "graphmix"), "dataset=cora",
           f"epochs={epochs}", "log_every=100000", "progress=false", "--seeds", *map(str, seeds), "--jobs", str(jobs),
           "--results-dir", str(out / "results"), "--runs-dir", str(out / "runs"), "--resume", "never"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def best_test_acc(out: Path) -> dict:
    return {p.name: json.loads(p.read_text())["metrics"]["best_test_acc"]
            for p in (out / "results" / "runs" / "graphmix").glob("*.json")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--epochs", type=int, default=500)
    args = p.parse_args()
    seeds = list(range(1, args.seeds + 1))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        timed_run(1, seeds[:1], 20, tmp / "warm")  # the processed-data cache, so neither way pays for it
        sequential = timed_run(1, seeds, args.epochs, tmp / "seq")
        parallel = timed_run(2, seeds, args.epochs, tmp / "par")
        seq, par = best_test_acc(tmp / "seq"), best_test_acc(tmp / "par")
        diff = max(abs(seq[name] - par[name]) for name in seq)
    print(f"{len(seeds)} seeds x {args.epochs} epochs of GraphMix(GCN) on Cora: one after another {sequential:.1f} s, "
          f"two side by side {parallel:.1f} s ({os.cpu_count()} cores); largest best_test_acc difference {diff:.4f}")
    print(json.dumps({"speedup": round(sequential / parallel, 2), "sequential_s": round(sequential, 1),
                      "parallel_s": round(parallel, 1), "seeds": len(seeds), "epochs": args.epochs,
                      "max_diff_best_test_acc": round(diff, 4)}))


if __name__ == "__main__":
    main()
