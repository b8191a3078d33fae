"""The engine's tax: one epoch through `mixsuite run`'s engine against a bare PyTorch loop doing the same work.

    python bench/engine_overhead.py                      # image (configs/image/cpu-cifar10jpeg.yaml: PreActResNet18
                                                         # width 1/4, batch 100) and spirals
    python bench/engine_overhead.py --task spirals --pairs 9
    python bench/engine_overhead.py --quick              # a check that it runs (tiny image subset, few pairs)

Both run in one process on the same task object: the engine drives the run (`Engine.run`: its loader and
sampler, progress, device moves, autocast, the NaN guard, the grad scaler, evaluation cadence, best-epoch
tracking, metrics.jsonl, logging, checkpoints), and at the start of each of its epochs the bench first runs a bare
epoch: the same batches of the same tensors (the task's loader, so the same order), the same augmentation, the same
mixing draws, model and optimizer (the generators, random states, weights and optimizer state are put back
afterwards, so the engine's epoch then computes the very same thing), `loss.backward(); optimizer.step();
optimizer.zero_grad()`, then the task's own `evaluate` (the work the engine's epoch does too). The engine's
epoch runs from its `train_epoch` to the next one's: everything it does per epoch. Pairs are interleaved; the
first is a warm-up; the ratio is of the medians. Last, an empty task (nothing to train or evaluate) runs 2000 epochs
through the engine: what one epoch's bookkeeping costs. Relative timings in one process: meaningful on a busy machine,
though noisier. The last line printed is JSON.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from _repo import ROOT  # noqa: E402  (first: the checkout's mixsuite importable)

from mixsuite.config import RunConfig, build_config  # noqa: E402
from mixsuite.engine import Engine  # noqa: E402
from mixsuite.mixing import one_hot  # noqa: E402
from mixsuite.task import Task, resolve  # noqa: E402

GOALS = {"image": 1.03, "spirals": 1.10}
EMPTY_GOAL_MS = 0.5


def bare_spirals_epoch(task) -> None:
    task.model.train()
    for x, y in task.train_loader:
        with task.mixer.step(len(x), device=x.device) as plan:
            out = task.model(x)
        loss = plan.mix_loss(lambda o, t: F.cross_entropy(o, t, reduction="none"), out, y)
        loss.backward()
        task.optimizer.step()
        task.optimizer.zero_grad(set_to_none=True)
        loss.item()


def bare_image_epoch(task) -> None:
    task.model.train()
    for x, y in task.train_loader:
        x = task.augment(x)
        targets = one_hot(y, task.data.num_classes)
        with task.mixer.step(len(x), device=x.device) as plan:
            out = task.model(x)
        if plan.active:
            targets = plan.mix_targets(targets)
        loss = task.criterion(out, targets)
        loss.backward()
        task.optimizer.step()
        task.optimizer.zero_grad(set_to_none=True)
        loss.item()
    task.scheduler.step()


BARE = {"spirals": bare_spirals_epoch, "image": bare_image_epoch}


def snapshot(task) -> dict:
    eng = task.engine
    return {"task": copy.deepcopy(task.state_dict()), "rng": torch.get_rng_state(),
            "generators": {k: g.get_state() for k, g in eng._generators.items()},
            "mixer": task.mixer.generator.get_state()}


def restore(task, state: dict) -> None:
    task.load_state_dict(state["task"])
    torch.set_rng_state(state["rng"])
    for k, g in task.engine._generators.items():
        g.set_state(state["generators"][k])
    task.mixer.generator.set_state(state["mixer"])


def interleaved(task_cls, name: str, bare_times: list, engine_times: list):
    """`task_cls` whose each epoch first runs (and times) a bare epoch, then the engine's own."""

    class Interleaved(task_cls):
        engine_started = None

        def train_epoch(self, epoch):
            now = time.perf_counter()
            if self.engine_started is not None:
                engine_times.append(now - self.engine_started)
            state = snapshot(self)
            t0 = time.perf_counter()
            BARE[name](self)
            self.evaluate(epoch)
            bare_times.append(time.perf_counter() - t0)
            restore(self, state)
            self.engine_started = time.perf_counter()
            return super().train_epoch(epoch)

    Interleaved.__name__ = task_cls.__name__
    return Interleaved


def measure(name: str, settings: list[str], config: list[str], pairs: int) -> dict:
    task_cls = resolve(str(ROOT / "tasks" / name)).load()
    cfg = build_config(task_cls.Config, config, [*settings, f"epochs={pairs + 2}", "progress=false", "seed=1"])
    bare, engine = [], []
    with tempfile.TemporaryDirectory() as tmp:
        Engine(interleaved(task_cls, name, bare, engine), cfg, runs_dir=tmp, resume="never",
               log=lambda *a: None).run()
    bare, engine = bare[1:pairs + 1], engine[1:pairs + 1]   # the first pair warms up; the last epoch has finish()
    ratio = statistics.median(engine) / statistics.median(bare)
    return {"ratio": round(ratio, 4), "goal": GOALS[name], "engine_ms": round(1e3 * statistics.median(engine), 2),
            "bare_ms": round(1e3 * statistics.median(bare), 2), "pairs": len(bare)}


class EmptyTask(Task):
    """Nothing to train: what remains of an epoch is the engine's own work."""

    name = "empty"
    primary_metric = select_metric = "score"

    def setup(self):
        pass

    def train_epoch(self, epoch):
        return {"loss": 1.0 / epoch}

    def evaluate(self, epoch):
        return {"score": float(epoch % 7)}


def empty_epoch_ms(epochs: int) -> float:
    """The engine's per-epoch cost: metrics, evaluation cadence, best tracking, metrics.jsonl, checkpoint checks."""
    cfg = RunConfig(epochs=epochs, progress=False, log_every=10 ** 9, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        Engine(EmptyTask, cfg, runs_dir=tmp, resume="never", log=lambda *a: None).run()
        return 1e3 * (time.perf_counter() - t0) / epochs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["image", "spirals", "both"], default="both")
    p.add_argument("--pairs", type=int, default=0, help="measured epoch pairs (default: image 3, spirals 9)")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("MIXSUITE_DATA", str(ROOT.parent / "shared" / "data"))
    image = ["train_per_class=10", "test_per_class=10", "sv_points=20"] if args.quick else []
    setups = {"image": (image + ["method=manifold", "train_eval_points=0"], [str(ROOT / "configs/image/cpu-cifar10jpeg.yaml")],
                        args.pairs or (2 if args.quick else 3)),
              "spirals": (["plots=false", "grid=20"], [], args.pairs or (3 if args.quick else 9))}
    out = {}
    for name in (["image", "spirals"] if args.task == "both" else [args.task]):
        settings, config, pairs = setups[name]
        out[name] = measure(name, settings, config, pairs)
        r = out[name]
        print(f"{name}: engine {r['engine_ms']:.1f} ms an epoch, bare loop {r['bare_ms']:.1f} ms: {r['ratio']:.3f}x "
              f"(goal <= {r['goal']}x; medians of {r['pairs']} interleaved pairs)")
    out["empty_epoch_ms"] = round(empty_epoch_ms(200 if args.quick else 2000), 3)
    print(f"an empty epoch through the engine: {out['empty_epoch_ms']:.3f} ms (goal < {EMPTY_GOAL_MS} ms)")
    print(json.dumps({"threads": torch.get_num_threads(), **out}))


if __name__ == "__main__":
    main()
