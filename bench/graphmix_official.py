"""Run the official GraphMix code (vikasverma1077/GraphMix, `semisupervised/codes`) on this CPU, beside mixsuite.

The official code carries no licence, so none of it is here: point `--code` at your own checkout of its
`semisupervised/codes` folder. This script feeds it the Planetoid data mixsuite loads (written once in the GMNN
text format the code reads, under mixsuite's cache), runs its `train.py` once per seed in a fresh process with the
options of its own `run_<dataset>.py`, and prints test accuracy at the best dev accuracy, as the code reports it.

    python bench/graphmix_official.py --code ~/GraphMix/semisupervised/codes --dataset cora --seeds $(seq 1 100) \
        --jobs 2 --out official-cora.jsonl

Written for the code at vikasverma1077/GraphMix @0edc79b (the version whose numbers its README copy quotes).
The code was written for torch 1.1 on a GPU. Five changes make it run on the CPU under current torch; they are
applied at run time, the files are left as they are:
  1. `.cuda()` returns its tensor or module unchanged (the code calls it unconditionally; `--cpu` is passed).
  2. `layer.SparseMM`, a legacy autograd.Function current torch rejects, becomes torch.sparse.mm (CSR).
  3. `gnn.mixup_gnn_hidden` mixes a copy of the hidden states: it writes into ReLU's output in place, which
     today's autograd refuses (ReLU's backward reads that output); on a copy, values and gradients are those of
     the mix written out of place.
  4. Speed only: the input dropout drops the non-zeros of the 99 % zero feature matrix and hands the first layer
     a sparse matrix (F.dropout on the dense matrix leaves the zeros zero, so the distribution is the same; the
     random stream differs). About 30 s a Cora seed instead of several minutes.
  5. `torch.sparse.FloatTensor` is given back if a future torch drops it.
Each seed's result is appended to `--out` (one JSON line), so a killed run resumes where it stopped. Prints one
line per seed, then a JSON summary last: {"dataset", "n", "best_test_acc_mean", "best_test_acc_std", ...}.
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from _repo import ROOT  # noqa: E402  (first: the checkout's mixsuite importable)

RUN_OPTION = re.compile(r"^opt\['(\w+)'\]\s*=\s*(.+?)\s*$")


def run_script_options(code: Path, dataset: str) -> dict:
    """The `opt[...] = value` settings of the code's own run_<dataset>.py (its seeds loop is not run)."""
    script = code / f"run_{dataset}.py"
    if not script.is_file():
        raise SystemExit(f"{script} not found: --code must be the official repository's semisupervised/codes folder")
    opts = {}
    for line in script.read_text().splitlines():
        m = RUN_OPTION.match(line.strip())
        if m and m.group(1) != "seed":
            opts[m.group(1)] = ast.literal_eval(m.group(2))
    return opts


def export_gmnn(dataset: str, data_root: Path, out: Path) -> Path:
    """Planetoid `dataset` as mixsuite loads it, in GMNN's net/feature/label/train/dev/test text files."""
    if (out / "test.txt").is_file():
        return out
    from mixsuite.checkpoint import atomic_write_text
    from mixsuite.task import use_task_folders

    use_task_folders(ROOT / "tasks")
    from mixsuite.plugins.graphmix.data import load_planetoid

    g = load_planetoid(data_root, dataset)
    out.mkdir(parents=True, exist_ok=True)
    rows, cols = g.adj.to_sparse_coo().coalesce().indices().tolist()
    neighbours: list[list[int]] = [[] for _ in range(g.num_nodes)]
    for u, v in zip(rows, cols):
        if u != v:
            neighbours[u].append(v)
    # A node without edges is written as a self-loop, as GMNN's files do, so the code's vocabulary has it.
    net = "".join(f"{u}\t{v}\t1\n" for u in range(g.num_nodes) for v in (sorted(neighbours[u]) or [u]))
    features: list[list[int]] = [[] for _ in range(g.num_nodes)]
    for u, j in zip(*g.x.coalesce().indices().tolist()):
        features[u].append(j)
    feature = "".join(f"{u}\t" + " ".join(f"{j}:1" for j in fs) + "\n" for u, fs in enumerate(features) if fs)
    files = {"net.txt": net, "feature.txt": feature,
             "label.txt": "".join(f"{u}\t{int(y)}\n" for u, y in enumerate(g.y.tolist())),
             "train.txt": "".join(f"{i}\n" for i in g.train_idx.tolist()),
             "dev.txt": "".join(f"{i}\n" for i in g.val_idx.tolist()),
             "test.txt": "".join(f"{i}\n" for i in g.test_idx.tolist())}
    for name, text in files.items():          # test.txt last: its presence marks a complete export
        atomic_write_text(out / name, text)
    return out


class SparseProduct:
    """Stands in for the code's `SparseMM(adj)(dense)`: adj @ dense with adj in CSR (converted once)."""

    _csr: dict = {}

    def __init__(self, sparse):
        import torch
        key = id(sparse)
        if key not in self._csr:
            self._csr[key] = (sparse, sparse.coalesce().to_sparse_csr() if sparse.layout == torch.sparse_coo
                              else sparse)
        self.sparse = self._csr[key][1]

    def __call__(self, dense):
        import torch
        return torch.sparse.mm(self.sparse, dense)


class InputDropoutOnNonZeros:
    """torch.nn.functional, except that dropout on the (nodes x features) input drops its non-zeros only."""

    def __init__(self, functional, num_features: int):
        self._functional, self._num_features, self._csr = functional, num_features, {}

    def __getattr__(self, name):
        return getattr(self._functional, name)

    def dropout(self, x, p=0.5, training=True, inplace=False):
        import torch
        is_input = x.layout == torch.strided and x.dim() == 2 and x.shape[1] == self._num_features \
            and not x.requires_grad
        if not is_input:
            return self._functional.dropout(x, p, training, inplace)
        key = (x.data_ptr(), tuple(x.shape))   # the code's input matrix lives for the whole run
        if key not in self._csr:
            self._csr[key] = x.to_sparse_csr()
        csr = self._csr[key]
        if not training or p == 0:
            return csr
        values = csr.values()
        keep = torch.empty_like(values).bernoulli_(1 - p)
        return torch.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(), values * keep / (1 - p), csr.shape)


def patch_for_cpu(code: Path, num_features: int) -> None:
    """The five run-time changes of the module docstring; call before the code's train.py runs."""
    import torch
    import torch.nn.functional as F

    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    if not hasattr(torch.sparse, "FloatTensor"):
        torch.sparse.FloatTensor = lambda i, v, size: torch.sparse_coo_tensor(i, v, size)
    sys.path.insert(0, str(code))
    import gnn
    import layer

    missing = [f"{m.__name__}.{name}" for m, name in ((layer, "SparseMM"), (gnn, "mixup_gnn_hidden"), (gnn, "F"))
               if not hasattr(m, name)]
    if missing:
        raise SystemExit(f"{code} has no {', '.join(missing)}: this script is written for the code at "
                         f"vikasverma1077/GraphMix @0edc79b (semisupervised/codes); check out that commit")
    layer.SparseMM = SparseProduct
    mix = gnn.mixup_gnn_hidden
    gnn.mixup_gnn_hidden = lambda x, *a: mix(x.clone(), *a)
    gnn.F = InputDropoutOnNonZeros(F, num_features)


def worker(code: Path, data: Path, seed: int, options: dict) -> dict:
    """One seed of the code's train.py in this (fresh) process; returns what its get_accuracy reports."""
    import runpy
    import tempfile
    import warnings

    warnings.simplefilter("ignore")
    num_features = len({f.split(":")[0] for line in (data / "feature.txt").read_text().splitlines()
                        for f in line.split("\t")[1].split(" ")})
    patch_for_cpu(code, num_features)
    opts = dict(options, dataset=str(data), save="exp", seed=seed)
    sys.argv = ["train.py", *[a for k, v in opts.items() for a in (f"--{k}", str(v))], "--cpu"]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)                          # the code makes its --save folder in the working directory
        g = runpy.run_path(str(code / "train.py"), run_name="__main__")
    results = g["base_results"]               # [(dev_acc, test_acc)] per epoch
    best_dev = max(d for d, _ in results)
    return {"seed": seed, "best_test_acc": g["acc_test"], "best_val_acc": best_dev, "last_test_acc": results[-1][1],
            "epochs": len(results), "seconds": round(time.perf_counter() - t0, 2)}


def read_rows(path: Path, text: str) -> list[dict]:
    """The seeds already in `path` (whose content is `text`); a line cut short by a kill is skipped (that seed
    runs again)."""
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"{path}: skipping an unfinished line: {line[:60]!r}", file=sys.stderr)
    return rows


def summary(dataset: str, rows: list[dict]) -> dict:
    from mixsuite.report import mean_std

    n = len(rows)
    mean, std = mean_std([100 * r["best_test_acc"] for r in rows])
    seeds = sorted(r["seed"] for r in rows)
    contiguous = seeds == list(range(seeds[0], seeds[-1] + 1))
    return {"dataset": dataset, "n": n, "seeds": f"{seeds[0]}-{seeds[-1]}" if contiguous else seeds,
            "best_test_acc_mean": round(mean, 3), "best_test_acc_std": round(std, 3),
            "best_test_acc_se": round(std / math.sqrt(n), 3),
            "seconds_per_seed": round(sum(r["seconds"] for r in rows) / n, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--code", type=Path, required=True, help="the official repository's semisupervised/codes folder")
    p.add_argument("--dataset", default="cora", choices=["cora", "citeseer", "pubmed"])
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    p.add_argument("--jobs", type=int, default=1, help="seeds run at once, one thread each when > 1")
    p.add_argument("--out", type=Path, help="JSON lines, one per seed; seeds already in it are not run again")
    p.add_argument("--epochs", type=int, help="override the run script's pre_epoch (e.g. 200 to check it runs)")
    p.add_argument("--data-root", type=Path, default=None, help="default: $MIXSUITE_DATA, else ../shared/data")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    code = args.code.expanduser().resolve()
    options = run_script_options(code, args.dataset)
    if args.epochs:
        options["pre_epoch"] = args.epochs
    if args.worker is not None:
        print("RESULT " + json.dumps(worker(code, args.data, args.worker, options)), flush=True)
        return

    from mixsuite.cache import cache_dir
    data_root = args.data_root or Path(os.environ.get("MIXSUITE_DATA", ROOT.parent / "shared" / "data"))
    data = export_gmnn(args.dataset, data_root, cache_dir() / "graphmix-official" / args.dataset)
    text = args.out.read_text() if args.out and args.out.is_file() else ""
    done = read_rows(args.out, text)
    if text and not text.endswith("\n"):
        with open(args.out, "a") as f:          # end a line cut short by a kill before appending
            f.write("\n")
    todo = [s for s in args.seeds if s not in {r["seed"] for r in done}]
    env = dict(os.environ, OMP_NUM_THREADS="1") if args.jobs > 1 else dict(os.environ)
    rows = [r for r in done if r["seed"] in args.seeds]

    def launch(seed):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--code", str(code), "--dataset", args.dataset,
               "--worker", str(seed), "--data", str(data)] + (["--epochs", str(args.epochs)] if args.epochs else [])
        return seed, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    running = []
    while todo or running:
        while todo and len(running) < max(1, args.jobs):
            running.append(launch(todo.pop(0)))
        seed, proc = running.pop(0)
        out, err = proc.communicate()
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            raise SystemExit(f"seed {seed} failed (exit {proc.returncode}):\n{err[-3000:]}")
        row = json.loads(lines[-1][len("RESULT "):])
        rows.append(row)
        if args.out:
            with open(args.out, "a") as f:      # one line per finished seed: a killed run resumes
                f.write(json.dumps(row) + "\n")
        print(f"{args.dataset} seed {seed}: best_test_acc {100 * row['best_test_acc']:.1f} "
              f"(best dev {100 * row['best_val_acc']:.1f}, {row['seconds']:.0f} s)", flush=True)
    if not rows:
        raise SystemExit("no seeds to summarise")
    print(json.dumps(summary(args.dataset, rows)))


if __name__ == "__main__":
    main()
