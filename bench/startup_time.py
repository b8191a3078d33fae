"""How long `mixsuite --help`, `mixsuite list` and `mixsuite compare` take to start, and whether they import torch.

    python bench/startup_time.py                       # this checkout, 5 runs of each, the median
    python bench/startup_time.py --source OTHER_CHECKOUT --repeat 9
    old=$(mktemp -d) && git archive COMMIT | tar -x -C "$old" && python bench/startup_time.py --source "$old"   # before/after

Each command runs in a fresh interpreter (`python -m mixsuite ...`, the package taken from --source), so the
figure is what a user waits for. Time it on an idle machine: on a loaded one the numbers say little.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"--help": ["--help"], "list": ["list"], "compare": ["compare", "results", "--task", "spirals"]}
PROBE = "import runpy, sys; sys.argv[0] = 'mixsuite'\ntry:\n    runpy.run_module('mixsuite', run_name='__main__')\n" \
        "except SystemExit:\n    pass\nprint('torch imported' if 'torch' in sys.modules else 'no torch', file=sys.stderr)"


def time_command(source: Path, argv: list[str], repeat: int) -> tuple[float, float, str]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    seconds, torch_line = [], ""
    with tempfile.TemporaryDirectory() as runs:   # nothing written into the checkout
        env["MIXSUITE_RUNS"] = runs
        for _ in range(repeat):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=source, env=env, capture_output=True,
                                  text=True)
            seconds.append(time.perf_counter() - start)
            torch_line = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"
    return statistics.median(seconds), min(seconds), torch_line


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", type=Path, default=ROOT, help="the checkout whose mixsuite is timed (default: this one)")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    print(f"source {args.source}, {args.repeat} runs each, python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, argv in COMMANDS.items():
        median, best, torch_line = time_command(args.source.resolve(), argv, args.repeat)
        print(f"mixsuite {name:<8}  median {median:6.2f} s  min {best:6.2f} s  ({torch_line})")


if __name__ == "__main__":
    main()
