"""Wall time of one full GraphMix(GCN) seed on Cora (2000 epochs, eval every epoch), as `mixsuite run` does it.

    python bench/graphmix_speed.py            # the full 2000 epochs
    python bench/graphmix_speed.py --quick    # 200 epochs, to check it runs

Prints per-phase timings, then one JSON line: {"seconds_per_seed": ..., "epochs": ...}.
Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mixsuite import runner  # noqa: E402
from mixsuite.config import build_config  # noqa: E402
from mixsuite.task import resolve  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--dataset", default="cora")
    p.add_argument("--method", default="graphmix")
    args = p.parse_args()
    os.environ.setdefault("MIXSUITE_DATA", str(ROOT.parent / "shared" / "data"))
    epochs = 200 if args.quick else 2000
    task = resolve(str(ROOT / "tasks" / "graphmix")).load()
    cfg = build_config(task.Config, [], [f"dataset={args.dataset}", f"method={args.method}", f"epochs={epochs}",
                                         "progress=false", "log_every=100000"])
    with tempfile.TemporaryDirectory() as tmp:
        runner.run(task, cfg, results_dir=Path(tmp) / "r", runs_dir=Path(tmp) / "runs", log=lambda *a: None)  # warm cache
        t0 = time.perf_counter()
        rec = runner.run(task, cfg, results_dir=Path(tmp) / "r2", runs_dir=Path(tmp) / "runs2", log=lambda *a: None)
        seconds = time.perf_counter() - t0
    print(f"{args.method} on {args.dataset}: {epochs} epochs in {seconds:.1f} s "
          f"(best_test_acc {rec['metrics']['best_test_acc']:.4f}, threads {os.environ.get('OMP_NUM_THREADS', 'default')})")
    print(json.dumps({"seconds_per_seed": round(seconds, 2), "epochs": epochs}))


if __name__ == "__main__":
    main()
