"""mixsuite's GraphMix(GCN) against the minimal one-file implementation (bench/graphmix_minimal.py), timed
alternately in one window: N rounds, each runs both on the same seed (which goes first alternates: ABBA, so a drift
in the machine's load falls on both), each in a fresh process.

    python bench/graphmix_vs_minimal.py --rounds 5                  # Cora, 2000 epochs: the figure issue 46 asks for
    python bench/graphmix_vs_minimal.py --rounds 2 --epochs 50      # to check that it runs

Timed per run: `train_s`, the run's own clock from its data on the device to its result (mixsuite: the record's
wall_time_s, the engine's time after setup: training, evaluation every epoch, metrics.jsonl, checkpoints; the
minimal: the same span), and `process_s`, the subprocess's wall time (imports and data loading too). Prints each
round, then the medians and the ratio mixsuite / minimal of the medians of train_s (and of process_s), then one
JSON line. Set OMP_NUM_THREADS to fix the threads of both (a record states the count it ran with).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _repo import ROOT  # noqa: E402

MINIMAL = ROOT / "bench" / "graphmix_minimal.py"


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def run_minimal(seed: int, epochs: int, dataset: str, env: dict) -> dict:
    process_s, out = timed([sys.executable, str(MINIMAL), "--seed", str(seed), "--epochs", str(epochs),
                            "--dataset", dataset], env)
    result = json.loads(out.strip().splitlines()[-1])
    return {"train_s": result["seconds"], "process_s": process_s, "best_test_acc": result["best_test_acc"]}


def run_mixsuite(seed: int, epochs: int, dataset: str, env: dict, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        process_s, _ = timed([sys.executable, "-m", "mixsuite", "run", "tasks/graphmix", f"dataset={dataset}",
                              "method=graphmix", f"seed={seed}", f"epochs={epochs}", "device=cpu", "progress=false",
                              *overrides, "--results-dir", f"{tmp}/results", "--runs-dir", f"{tmp}/runs"], env)
        (record,) = Path(tmp, "results").rglob("*.json")
        rec = json.loads(record.read_text())
    return {"train_s": rec["wall_time_s"], "process_s": process_s, "best_test_acc": rec["metrics"]["best_test_acc"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=2000)
    p.add_argument("--dataset", default="cora")
    p.add_argument("--seed", type=int, default=1, help="the first round's seed (round i: seed + i)")
    p.add_argument("overrides", nargs="*", help="key=value overrides for the mixsuite run")
    args = p.parse_args()
    env = {**os.environ, "MIXSUITE_DATA": os.environ.get("MIXSUITE_DATA", str(ROOT.parent / "shared" / "data"))}
    runs = {"minimal": [], "mixsuite": []}
    for i in range(args.rounds):
        seed = args.seed + i
        order = ("minimal", "mixsuite") if i % 2 == 0 else ("mixsuite", "minimal")
        for name in order:
            r = (run_minimal(seed, args.epochs, args.dataset, env) if name == "minimal"
                 else run_mixsuite(seed, args.epochs, args.dataset, env, args.overrides))
            runs[name].append(r)
            print(f"round {i + 1} seed {seed} {name:<8} train {r['train_s']:7.2f} s  process {r['process_s']:7.2f} s"
                  f"  best_test_acc {r['best_test_acc']:.4f}", flush=True)
    med = {name: {k: statistics.median(r[k] for r in rs) for k in ("train_s", "process_s")} for name, rs in runs.items()}
    ratio = {k: med["mixsuite"][k] / med["minimal"][k] for k in ("train_s", "process_s")}
    for name in runs:
        print(f"median {name:<8} train {med[name]['train_s']:7.2f} s  process {med[name]['process_s']:7.2f} s")
    print(f"mixsuite / minimal: {ratio['train_s']:.3f} (train), {ratio['process_s']:.3f} (process)")
    print(json.dumps({"dataset": args.dataset, "epochs": args.epochs, "rounds": args.rounds,
                      "threads": os.environ.get("OMP_NUM_THREADS", "default"),
                      "median_train_s": {k: round(v["train_s"], 3) for k, v in med.items()},
                      "median_process_s": {k: round(v["process_s"], 3) for k, v in med.items()},
                      "ratio_train": round(ratio["train_s"], 3), "ratio_process": round(ratio["process_s"], 3),
                      "runs": runs}))


if __name__ == "__main__":
    main()
