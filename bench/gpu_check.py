"""Every GPU path of mixsuite in one command: each check in its own process, under its own timeout, one JSON line
per check as it ends, a summary line last; the exit code is non-zero if any check failed.

    python bench/gpu_check.py                          # on a lent GPU machine (about 10 minutes at most)
    python bench/gpu_check.py --device cpu --quick     # the same checks at toy size on CPU (CI runs this)
    python bench/gpu_check.py --only smoke:image step:eager   # some checks (names as in the JSON lines' "check")

Checks:
- `smoke:<task>`: every task's smoke config on the device with amp=bf16 (channels_last where the task has images),
  mixing on; its record's metrics must be finite.
- `compile:image`: the image smoke with compile=true (inductor; --quick: aot_eager), mixing on; finite metrics.
- `torchrun:image`: the image smoke under torchrun (1 process; 2 where two GPUs exist), against the one-process
  run within the tolerance tests/test_torchrun.py uses.
- `step:eager`, `step:compiled`: a training step of PreActResNet18 (full width; --quick: width 1/8), batch 128 and 512 (--quick: 8),
  erm against manifold mixup: images/s, time and peak-memory ratios, eager or torch.compile'd.
- `pipeline`: the image task's input pipeline alone (uint8 tensors on the device through crop, flip and
  normalisation), images/s, so we know whether the GPU waits on data.
- `graphmix`: one GraphMix Cora seed (2000 epochs; --quick: the smoke's 200) on the device, its wall time.
Each check uses the real data when $MIXSUITE_DATA has it and otherwise a synthetic stand-in of the same shapes
(bench/standin_data.py); its JSON line says which ("data": "real" | "synthetic" | "none").
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("spirals", "image", "fewshot", "graphmix", "handwriting", "metric", "regression", "flatten")
IMAGE_TASKS = {"image", "fewshot", "metric", "handwriting"}
# Where each task's real data lives under the data root, and the overrides that point its smoke at the stand-in.
REAL = {"image": "cifar10_jpeg/cifar10_jpeg.npz", "fewshot": "omniglot", "graphmix": "planetoid/Cora/raw",
        "handwriting": "htr_testaments_de_poilus/lines.tsv", "metric": "omniglot", "regression": "regression",
        "flatten": "mnist/mnist.npz"}
STANDIN = {"image": [],
           "fewshot": ["dataset=cub", "image_size=16", "base_classes=0", "val_classes=0", "batch_size=32", "n_query=5",
                       "shots=[1]", "val_episodes=10", "test_episodes=20", "classifier_steps=50"],
           "graphmix": [],
           "handwriting": ["dataset=tsv:lines", "height=32"],
           "metric": ["dataset=folder", "data_folder={data}/metric_folder", "image_size=16", "train_classes=0",
                      "val_classes=10", "test_classes=0"],
           "flatten": []}
# tests/test_torchrun.py's image case and its tolerances (about 3x the spread of the metric over seeds 0-4)
TORCHRUN_IMAGE = ["train_per_class=10", "test_per_class=10", "sv_points=50", "plots=false"]
TORCHRUN_TOLERANCE = {"test_nll": 0.015, "test_err": 10.0}


def emit(line: dict) -> None:
    print(json.dumps(line), flush=True)


# ---- the checks (each runs in a child process and returns its JSON line) ---------------------------------------
def data_for(task: str, args) -> tuple[Path, str]:
    """(data root, "real" | "synthetic" | "none") for a task's check."""
    if task not in REAL:
        return Path(args.standin), "none"
    real = Path(os.environ.get("MIXSUITE_DATA", "") or ROOT.parent / "shared" / "data")
    if (real / REAL[task]).exists():
        return real, "real"
    if task == "regression":
        raise RuntimeError("no regression data under $MIXSUITE_DATA and no stand-in for it")
    return Path(args.standin), "synthetic"


def mixsuite_run(task: str, overrides: list[str], out: Path, timeout: float, torchrun: int = 0) -> dict:
    """`mixsuite run tasks/<task> -c smoke OVERRIDES` in a subprocess; returns its record."""
    cmd = [sys.executable, "-m", "mixsuite", "run", f"tasks/{task}", "-c", f"configs/{task}/smoke.yaml", *overrides,
           "progress=false", "--results-dir", str(out / "results"), "--runs-dir", str(out / "runs")]
    if torchrun:
        cmd[1:2] = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}", "-m"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[-1500:]}")
    from mixsuite.report.records import record_files

    records = record_files(out / "results")
    if len(records) != 1:
        raise RuntimeError(f"expected one record under {out / 'results'}, found {len(records)}")
    return json.loads(records[0].read_text())


def smoke_overrides(task: str, args) -> tuple[list[str], str]:
    root, source = data_for(task, args)
    over = [f"device={args.device}", "amp=bf16", f"data_root={root}"]
    if task in IMAGE_TASKS:
        over += ["channels_last=true", *(["cpu_channels_last=true"] if args.device == "cpu" else [])]
    if source == "synthetic":
        over += [o.format(data=root) for o in STANDIN.get(task, [])]
    if task == "graphmix" and args.device != "cpu":
        over = [o for o in over if not o.startswith(("amp=", "channels_last"))]   # full-batch fp32 sparse products
    return over, source


def check_smoke(task: str, args, extra: tuple[str, ...] = ()) -> dict:
    over, source = smoke_overrides(task, args)
    over += list(extra)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.time()
        rec = mixsuite_run(task, over, Path(out), args.timeout)
    metrics = {k: v for k, v in rec["metrics"].items() if isinstance(v, (int, float))}
    bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
    primary = {k: metrics[k] for k in list(metrics)[:4]}
    return {"ok": not bad, "data": source, "seconds": round(time.time() - t0, 1), "device": rec.get("device"),
            "method": rec["config"].get("method"), "non_finite": bad, "metrics": primary}


def check_torchrun(args) -> dict:
    import torch

    over, source = smoke_overrides("image", args)
    over += TORCHRUN_IMAGE
    procs = 2 if args.device != "cpu" and torch.cuda.device_count() >= 2 else 1
    with tempfile.TemporaryDirectory() as out:
        one = mixsuite_run("image", over, Path(out) / "one", args.timeout)
        many = mixsuite_run("image", over, Path(out) / "many", args.timeout, torchrun=procs)
    gaps = {k: abs(many["metrics"][k] - one["metrics"][k]) for k in TORCHRUN_TOLERANCE}
    within = all(gaps[k] <= tol for k, tol in TORCHRUN_TOLERANCE.items())
    return {"ok": within and many.get("world_size") == procs, "data": source, "processes": procs,
            "world_size": many.get("world_size"), "gaps": gaps, "tolerance": TORCHRUN_TOLERANCE,
            "process_group": "nccl" if procs > 1 and args.device != "cpu" else ("gloo" if procs > 1 else "none")}


def check_step(args, compiled: bool) -> dict:
    from step_timing import time_steps   # bench/step_timing.py

    batches = [8] if args.quick else [128, 512]
    width, steps = (0.125, 3) if args.quick else (1.0, 20)
    results, ok = {}, True
    for batch in batches:
        try:
            results[f"b{batch}"] = time_steps(args.device, batch, width, steps, compiled)
        except Exception as e:   # a failure at one batch size is a finding, reported with the others
            results[f"b{batch}"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            ok = False
    return {"ok": ok, "data": "synthetic", "width": width, **results}


def check_pipeline(args) -> dict:
    import torch

    from mixsuite.task import use_task_folders

    use_task_folders(ROOT / "tasks")
    from mixsuite.images import normalize
    from mixsuite.plugins.image.augment import random_crop, random_flip

    device = torch.device(args.device)
    n, batch = (2048, 256) if args.quick else (50_000, 512)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, device=device)
    mean = (0.49, 0.48, 0.45)   # per channel, as the image task gives them
    std = (0.25, 0.24, 0.26)
    g = torch.Generator(device=device).manual_seed(0)

    def epoch():
        order = torch.randperm(n, device=device, generator=g)
        for i in range(0, n, batch):
            x = random_crop(images[order[i:i + batch]], 2, g)
            x = normalize(random_flip(x, g), mean, std)
        return x

    epoch()   # warm-up
    sync(device)
    t0 = time.perf_counter()
    x = epoch()
    sync(device)
    seconds = time.perf_counter() - t0
    return {"ok": bool(torch.isfinite(x).all()), "data": "synthetic", "images": n, "batch": batch,
            "images_per_s": round(n / seconds)}


def check_graphmix(args) -> dict:
    over, source = smoke_overrides("graphmix", args)
    if not args.quick:
        over += ["epochs=2000", "ramp_start=500", "ramp_length=500", "log_every=500", "checkpoint_every=2000"]
    with tempfile.TemporaryDirectory() as out:
        t0 = time.time()
        rec = mixsuite_run("graphmix", over, Path(out), args.timeout)
    m = rec["metrics"]
    return {"ok": all(math.isfinite(v) for v in m.values() if isinstance(v, float)), "data": source,
            "epochs": rec["config"]["epochs"], "seconds": round(time.time() - t0, 1),
            "wall_time_s": rec.get("wall_time_s"), "best_test_acc": m.get("best_test_acc")}


def sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


# ---- the driver -----------------------------------------------------------------------------------------------
def available_checks() -> list[str]:
    smokes = [f"smoke:{t}" for t in TASKS if (ROOT / "configs" / t / "smoke.yaml").is_file()]
    return [*smokes, "compile:image", "torchrun:image", "step:eager", "step:compiled", "pipeline", "graphmix"]


def run_check(name: str, args) -> dict:
    if name.startswith("smoke:"):
        return check_smoke(name.split(":", 1)[1], args)
    if name == "compile:image":   # --quick: aot_eager (tracing, AOT autograd, the hooks) without inductor's minutes
        backend = "aot_eager" if args.quick else "inductor"
        return check_smoke("image", args, ("compile=true", f"compile_backend={backend}"))
    if name.startswith("step:"):
        return check_step(args, compiled=name == "step:compiled")
    return {"torchrun:image": check_torchrun, "pipeline": check_pipeline, "graphmix": check_graphmix}[name](args)


def child(name: str, args) -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    try:
        line = run_check(name, args)
    except Exception as e:
        line = {"ok": False, "error": f"{type(e).__name__}: {str(e)[-1500:]}"}
    emit({"check": name, **line})


def parent(args) -> int:
    names = [n for n in args.only or available_checks() if n not in args.skip]
    unknown = [n for n in [*names, *args.skip] if n not in available_checks()]
    if unknown:
        print(f"unknown check(s) {unknown}; the checks are {available_checks()}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as standin:
        sys.path.insert(0, str(ROOT / "bench"))
        from standin_data import write_all

        write_all(Path(standin))
        t_all, failed = time.time(), []
        for name in names:
            cmd = [sys.executable, __file__, "--child", name, "--device", args.device, "--standin", standin,
                   "--timeout", str(args.timeout), *(["--quick"] if args.quick else [])]
            t0 = time.time()
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout + 30)
                lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
                line = json.loads(lines[-1]) if lines else {
                    "check": name, "ok": False, "error": f"exit {done.returncode}: {done.stderr.strip()[-1500:]}"}
            except subprocess.TimeoutExpired:
                line = {"check": name, "ok": False, "error": f"timed out after {args.timeout + 30:.0f} s"}
            line["check_seconds"] = round(time.time() - t0, 1)
            emit(line)
            if not line.get("ok"):
                failed.append(name)
    emit({"summary": True, "device": args.device, "quick": args.quick, "checks": len(names),
          "passed": len(names) - len(failed), "failed": failed, "seconds": round(time.time() - t_all, 1)})
    return 1 if failed else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    p.add_argument("--quick", action="store_true", help="toy sizes (the CPU check CI runs)")
    p.add_argument("--only", nargs="+", metavar="CHECK", help="run only these checks")
    p.add_argument("--skip", nargs="+", metavar="CHECK", default=[], help="run all checks but these")
    p.add_argument("--timeout", type=float, default=240.0, help="seconds a check may take (default 240)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--standin", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
