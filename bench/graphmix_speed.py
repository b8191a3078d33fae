"""Wall time of one full GraphMix seed (2000 epochs, eval every epoch) as `mixsuite run` runs it, and where it goes.

    python bench/graphmix_speed.py                       # Cora, GraphMix(GCN), the full 2000 epochs
    python bench/graphmix_speed.py --dataset citeseer
    python bench/graphmix_speed.py --method graphmix-gat -c configs/graphmix/gat.yaml
    python bench/graphmix_speed.py --quick               # 200 epochs, to check it runs

The run goes through `mixsuite.runner.run` (the engine, its metrics file, checkpoints and record) with the task's
hooks timed by `time.perf_counter` sums: the K target passes, the rest of the FCN mixup step (its two FCN passes,
backward and optimizer step), the GNN step (forward, backward, step), evaluation, and the engine's own per-epoch
work (the run's time minus setup, the task's hooks and finish). The shares are meaningful on a busy machine; the
seconds are only on an idle one (with one thread, the process's CPU time, also printed, is the closer figure on a
busy machine: it leaves out the waits for a core). Prints the phases, then one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _repo import ROOT  # noqa: E402  (first: the checkout's mixsuite importable)

from mixsuite import runner  # noqa: E402
from mixsuite.config import build_config  # noqa: E402
from mixsuite.task import resolve  # noqa: E402

PHASES = ("targets", "fcn_step", "gnn_step", "evaluate", "engine", "setup+finish")


def timed_task(task_cls, seconds: dict):
    """`task_cls` with its hooks (and the target passes inside the FCN step) adding their time to `seconds`."""
    import importlib

    task_module = importlib.import_module(task_cls.__module__)
    predicted_targets = task_module.predicted_targets

    def timed_targets(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return predicted_targets(*args, **kwargs)
        finally:
            seconds["targets"] += time.perf_counter() - t0

    task_module.predicted_targets = timed_targets

    class Timed(task_cls):
        def setup(self):
            t0 = time.perf_counter()
            super().setup()
            seconds["setup+finish"] += time.perf_counter() - t0

        def train_epoch(self, epoch):
            t0, before = time.perf_counter(), seconds["targets"]
            out = super().train_epoch(epoch)
            spent = time.perf_counter() - t0
            if out.get("fcn_step"):
                seconds["fcn_step"] += spent - (seconds["targets"] - before)
            else:
                seconds["gnn_step"] += spent
            return out

        def evaluate(self, epoch):
            t0 = time.perf_counter()
            try:
                return super().evaluate(epoch)
            finally:
                seconds["evaluate"] += time.perf_counter() - t0

        def finish(self):
            t0 = time.perf_counter()
            try:
                return super().finish()
            finally:
                seconds["setup+finish"] += time.perf_counter() - t0

    Timed.__name__ = task_cls.__name__
    return Timed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--dataset", default="cora")
    p.add_argument("--method", default="graphmix")
    p.add_argument("-c", "--config", action="append", default=[], help="a YAML config file (repeatable)")
    p.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = p.parse_args()
    os.environ.setdefault("MIXSUITE_DATA", str(ROOT.parent / "shared" / "data"))
    epochs = 200 if args.quick else 2000
    task = resolve(str(ROOT / "tasks" / "graphmix")).load()
    settings = [f"dataset={args.dataset}", f"method={args.method}", f"epochs={epochs}", "progress=false",
                "log_every=100000", *args.overrides]
    cfg = build_config(task.Config, args.config, settings)
    warm = build_config(task.Config, args.config, settings + ["epochs=2"])
    seconds: dict = defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp:
        runner.run(task, warm, results_dir=Path(tmp) / "r0", runs_dir=Path(tmp) / "runs0", log=lambda *a: None)
        t0, cpu0 = time.perf_counter(), time.process_time()
        rec = runner.run(timed_task(task, seconds), cfg, results_dir=Path(tmp) / "r", runs_dir=Path(tmp) / "runs",
                         log=lambda *a: None)
        total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    seconds["engine"] = total - sum(seconds[k] for k in PHASES if k != "engine")
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"{args.method} on {args.dataset}: {epochs} epochs in {total:.2f} s, {cpu:.2f} s of CPU "
          f"(best_test_acc {rec['metrics']['best_test_acc']:.4f}, OMP_NUM_THREADS {threads})")
    for k in PHASES:
        print(f"  {k:<13} {seconds[k]:7.2f} s  {100 * seconds[k] / total:5.1f} %  {1e3 * seconds[k] / epochs:6.3f} ms/epoch")
    print(json.dumps({"seconds_per_seed": round(total, 2), "cpu_seconds": round(cpu, 2), "epochs": epochs, "dataset": args.dataset,
                      "method": args.method, "share": {k: round(seconds[k] / total, 4) for k in PHASES}}))


if __name__ == "__main__":
    main()
