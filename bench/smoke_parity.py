"""Every task's smoke record (and a few method variants) from two checkouts, compared metric by metric.

    python bench/smoke_parity.py run  --root OLD_CHECKOUT OUT_OLD     # records of the code at OLD_CHECKOUT
    python bench/smoke_parity.py run  --root .            OUT_NEW
    python bench/smoke_parity.py compare OUT_OLD OUT_NEW               # exit 1 if any number differs

A refactor that must not change what a run computes (issue 42) is checked so: every number of every record and
every line of metrics.jsonl must be equal, bit for bit, except the clocks (wall and epoch times, images a second).
Runs go through the CLI (`python -m mixsuite run`) from each checkout's root, one thread each (another thread count
changes float sums), with $MIXSUITE_DATA as the data root. The last line printed is a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

# (task, extra overrides): the smoke config of every task, and the methods whose training step differs
RUNS = [
    ("spirals", []), ("spirals", ["method=erm"]), ("spirals", ["method=input"]),
    *[("image", ["epochs=1", f"method={m}"]) for m in
      ("manifold", "erm", "input", "cutmix", "dropout", "cutout", "patchup", "patchup-hard", "nfm", "alignmix",
       "fmix", "resizemix")],
    ("image", ["loss=bce"]),
    ("fewshot", []), ("fewshot", ["method=manifold"]), ("fewshot", ["method=baselinepp", "epochs=1"]),
    ("graphmix", []), ("graphmix", ["method=gcn", "epochs=50"]),
    ("handwriting", []), ("handwriting", ["method=erm", "epochs=1"]),
    ("metric", []), ("metric", ["method=erm", "loss=triplet", "epochs=1"]),
]
CLOCKS = {"wall_time_s", "epoch_time_s", "images_per_s", "train_images_per_s", "train_time_s", "train_seconds"}


def run_all(root: Path, out: Path, only: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    for task, extra in RUNS:
        if only and task not in only:
            continue
        cmd = [sys.executable, "-m", "mixsuite", "run", f"tasks/{task}", "-c", "smoke", *extra, "progress=false",
               *(["plots=false"] if task in ("spirals", "image") else []),
               "--results-dir", str(out / "results"), "--runs-dir", str(out / "runs")]
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
        print(f"{task} {' '.join(extra)}: exit {done.returncode}", flush=True)
        if done.returncode:
            print(done.stderr[-2000:], flush=True)


def numbers(path: Path) -> dict:
    rec = json.loads(path.read_text())
    return {k: v for k, v in rec["metrics"].items() if k not in CLOCKS}


def epochs(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [{k: v for k, v in json.loads(ln).items() if k not in CLOCKS} for ln in lines if ln]


def same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)   # NaN equals NaN here


def compare(old: Path, new: Path) -> int:
    olds = {p.name: p for p in (old / "results" / "runs").glob("*/*.json")}
    news = {p.name: p for p in (new / "results" / "runs").glob("*/*.json")}
    problems, checked = [], 0
    for name in sorted(set(olds) | set(news)):
        if name not in olds or name not in news:
            problems.append(f"{name}: only in {'new' if name in news else 'old'}")
            continue
        a, b = numbers(olds[name]), numbers(news[name])
        diff = [f"{k}: {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b)) if not same(a.get(k), b.get(k))]
        task = olds[name].parent.name
        ea, eb = epochs(old / "runs" / task / name[:-5]), epochs(new / "runs" / task / name[:-5])
        if ea != eb:
            diff.append(f"metrics.jsonl differs ({len(ea)} vs {len(eb)} epochs)"
                        + "".join(f"\n      old {x}\n      new {y}" for x, y in zip(ea, eb) if x != y))
        checked += len(a)
        print(f"{'SAME' if not diff else 'DIFF'}  {name}  ({len(a)} metrics, {len(ea)} epochs)")
        problems += [f"{name}: {d}" for d in diff]
    for p in problems:
        print("  " + p)
    print(json.dumps({"records": len(olds), "metrics_checked": checked, "differences": len(problems)}))
    return 1 if problems else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("--root", type=Path, default=Path("."))
    r.add_argument("--only", nargs="*", default=[], help="only these tasks")
    c = sub.add_parser("compare")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    args = p.parse_args()
    if args.cmd == "run":
        run_all(args.root.resolve(), args.out.resolve(), args.only)
        return 0
    return compare(args.old, args.new)


if __name__ == "__main__":
    sys.exit(main())
