"""Flattening where the mixing happens: the class-conditional singular values of runs' hidden states at named
layers, from the runs' checkpoints (no training). Image and few-shot runs.

Both tasks record the spectra of their last hidden layer (the image task's pooled features on test images, the
few-shot task's backbone features on the first 100 novel classes), which is not in manifold mixup's S (image:
{input, layer1, layer2}; few-shot: {input, block1, block2, block3}); the theory puts the flattening at the mixed
layers. This script measures those layers on the same images, with the weights of the last epoch or of the epoch
selected on validation, and compares every method with the baseline seed by seed.

    python bench/layer_spectra.py \\
        runs/image/cifar10-jpeg-{erm-92720894f9,input-4311d2bf8c,manifold-d0551ee08c}-s{1,2,3,4,5} \\
        --weights best --figure results/figures/image-overfit-layer-spectra
    python bench/layer_spectra.py \\
        runs/fewshot/omniglot-vinyals-{baselinepp-fe5df58e17,manifold-636bd59755,s2m2-19f901dcc1}-s{1,2,3} \\
        --baseline baselinepp --weights best

Prints, per run, the class-mean effective rank at each layer ("features" is the layer the task records; where the
weights are the ones the run measured, it must give the record's value, which is checked), then per method and
layer the paired difference against the baseline (mean ± SE over the seeds both have, seeds above / equal / below)
of the effective rank, the top direction's variance share and the class spread (within-class / overall standard
deviation, `mixsuite.analysis.class_spread`: lower is more concentrated), then one JSON line last. `--split train`
measures as many training images instead (image runs; the theory's statement is about the points the network was
fitted on). `--figure PREFIX` draws PREFIX-<layer>.png
for each layer: the first six classes' normalised spectra, averaged over seeds, one line per method (the blog's
Figure 6).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from _repo import ROOT  # noqa: E402  (first: the checkout's mixsuite importable)

from mixsuite import checkpoint  # noqa: E402
from mixsuite.analysis import class_spread, plot_class_spectra, singular_values, spectrum_summary  # noqa: E402
from mixsuite.config import config_hash, from_record, load_yaml  # noqa: E402
from mixsuite.engine import Engine  # noqa: E402
from mixsuite.mixing.hooks import resolve_layers  # noqa: E402
from mixsuite.report.paired import paired_difference  # noqa: E402
from mixsuite.report.stats import fmt_ci, fmt_p  # noqa: E402
from mixsuite.report.spectra import numerical_rank  # noqa: E402
from mixsuite.task import resolve  # noqa: E402

FEATURES = "features"     # the pooled last hidden layer, as the task records it
SUMMARY = ("class_mean_erank", "class_mean_var_top1", "class_mean_var_top5")


@dataclass
class Measured:
    """Per task: the module its layer names (S) are relative to, the forward that gives its recorded features,
    that record's key, the weights the record used, and the layers measured by default. The images are the
    task's own `spectrum_points()`, the ones its record measured."""
    root: Callable
    features: Callable
    record_key: str
    record_weights: Callable
    layers: tuple
    splits: tuple = ("test",)


TASKS = {
    "image": Measured(lambda t: t.net, lambda t, x: t.predict(x, features=True)[1],
                      "last_hidden_sv_class_mean_erank", lambda cfg: "last",
                      ("layer1", "layer2", "layer3", "layer4", FEATURES), splits=("test", "train")),
    "fewshot": Measured(lambda t: t.net.backbone, lambda t, x: t.features(x),
                        "feature_sv_class_mean_erank", lambda cfg: cfg.test_weights,
                        ("block1", "block2", "block3", FEATURES)),    # block4 gives the features
}


def restored_task(run_dir: Path, weights: str, scratch: str):
    """The run's task, set up from its config.yaml, with the checkpoint's weights ('best' or 'last'), and what
    its task measures. `scratch`: the engine's runs folder (it writes nothing there: nothing is trained)."""
    name = run_dir.resolve().parent.name
    if name not in TASKS:
        raise SystemExit(f"{run_dir}: a run folder is runs/<task>/<run id> with task one of {', '.join(TASKS)}")
    task_cls = resolve(str(ROOT / "tasks" / name)).load()
    cfg = from_record(task_cls.Config, load_yaml(run_dir / "config.yaml"))
    if config_hash(cfg) not in run_dir.name:
        raise SystemExit(f"{run_dir}: its config.yaml hashes to {config_hash(cfg)}, not the hash in its name")
    engine = Engine(task_cls, cfg, runs_dir=scratch, resume="never", log=lambda *a: None)
    task = task_cls(cfg, engine)
    task.setup()
    state = checkpoint.load(run_dir / Engine.CHECKPOINT)
    if state["epoch"] < cfg.epochs:
        raise SystemExit(f"{run_dir}: its checkpoint is at epoch {state['epoch']} of {cfg.epochs}; finish the run")
    key = "best_net" if weights == "best" else "net"
    if state["task"].get(key) is None:
        raise SystemExit(f"{run_dir}: its checkpoint keeps no {key} (a run without a validation split); use "
                         "--weights last")
    task.net.load_state_dict(state["task"][key])
    return task, TASKS[name]


def hidden_states(task, measured: Measured, layers: list[str], split: str) -> tuple[dict, torch.Tensor]:
    """{layer: (points, flattened hidden state)} and the labels, on the images the run's record measured (or on
    as many training images, split="train")."""
    if split not in measured.splits:
        raise SystemExit(f"--split {split}: the {task.name} task measures {' or '.join(measured.splits)}")
    images, labels = task.spectrum_points(split)
    caught: dict[str, list[torch.Tensor]] = defaultdict(list)
    named = resolve_layers(measured.root(task), [n for n in layers if n != FEATURES])
    handles = [module.register_forward_hook(lambda m, i, out, name=name: caught[name].append(out.float().flatten(1)))
               for name, module in named.items()]
    try:
        feats = measured.features(task, images)
    finally:
        for h in handles:
            h.remove()
    states = {name: (feats if name == FEATURES else torch.cat(caught[name]).cpu()) for name in layers}
    return states, labels


def run_record(run_dir: Path, results: Path) -> dict:
    """The run's record (<results>/runs/<task>/<run_id>.json) where it is there, for the check."""
    path = results / "runs" / run_dir.resolve().parent.name / f"{run_dir.name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def normalised_mean(spectra: list[dict]) -> dict:
    """Each class's singular values normalised to sum 1 and averaged over runs (as `compare --spectra`)."""
    out = {}
    for c in spectra[0]["per_class"]:
        curves = [numerical_rank(s["per_class"][c]) for s in spectra]
        k = min(len(v) for v in curves)
        out[c] = torch.stack([v[:k] / v.sum() for v in curves]).mean(0)
    return {"per_class": out}


def measure_run(run_dir: Path, args, scratch: str) -> tuple[dict, dict]:
    """One run's row (per layer: the spectrum summary, the class spread, the size; the record check) and its
    class-conditional spectra by layer. The first run's task sets the layers when --layers is not given."""
    task, measured = restored_task(run_dir, args.weights, scratch)
    layers = args.layers = args.layers or list(measured.layers)
    states, labels = hidden_states(task, measured, layers, args.split)
    row, by_layer = {"run": run_dir.name, "method": task.cfg.method, "seed": task.cfg.seed, "layers": {}}, {}
    for layer, h in states.items():
        by_layer[layer] = sp = singular_values(h, labels, overall=False)
        summary = spectrum_summary(sp, prefix="")
        row["layers"][layer] = {k: summary[k] for k in SUMMARY} | {"class_spread": class_spread(h, labels),
                                                                   "dims": h.shape[1]}
    recorded = run_record(run_dir, args.results).get("metrics", {}).get(measured.record_key)
    as_recorded = args.split == "test" and args.weights == measured.record_weights(task.cfg)
    if as_recorded and recorded is not None and FEATURES in layers:
        got = row["layers"][FEATURES]["class_mean_erank"]
        row["record_check"] = abs(got - recorded) <= 1e-3 * recorded
        if not row["record_check"]:
            print(f"warning: {run_dir.name}: features erank {got:.4f}, its record {recorded:.4f}", file=sys.stderr)
    eranks = "  ".join(f"{layer} {v['class_mean_erank']:.2f}" for layer, v in row["layers"].items())
    print(f"{row['run']}: {eranks}", flush=True)
    return row, by_layer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (runs/<task>/<run id>) with a finished checkpoint")
    ap.add_argument("--layers", nargs="+", help="module names (default: the task's blocks and 'features')")
    ap.add_argument("--weights", choices=("best", "last"), default="best",
                    help="the epoch selected on validation (default) or the last epoch")
    ap.add_argument("--split", choices=("test", "train"), default="test",
                    help="the images the record measured (test) or as many training images (image task)")
    ap.add_argument("--baseline", default="erm")
    ap.add_argument("--results", type=Path, default=ROOT / "results", help="where the runs' records are")
    ap.add_argument("--figure", help="write PREFIX-<layer>.png for each layer")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        measured_runs = [measure_run(run_dir, args, scratch) for run_dir in args.runs]
    rows, spectra = [row for row, _ in measured_runs], defaultdict(lambda: defaultdict(list))
    for row, by_layer in measured_runs:     # spectra[layer][method] = [per-run spectra]
        for layer, sp in by_layer.items():
            spectra[layer][row["method"]].append(sp)

    paired = {}
    methods = sorted({r["method"] for r in rows} - {args.baseline})
    print(f"\nclass-mean effective rank, top-1 variance share and class spread, {args.split} images, "
          f"{args.weights} weights, paired against {args.baseline} (mean ± SE, 95 % CI, p, seeds above / equal / below)")
    for layer in args.layers:
        base = {r["seed"]: r["layers"][layer] for r in rows if r["method"] == args.baseline}
        for method in methods:
            mine = {r["seed"]: r["layers"][layer] for r in rows if r["method"] == method}
            for metric in ("class_mean_erank", "class_mean_var_top1", "class_spread"):
                d = paired_difference({s: v[metric] for s, v in mine.items()}, {s: v[metric] for s, v in base.items()})
                if d is None:
                    continue
                paired[f"{layer}/{method}/{metric}"] = {k: d[k] for k in ("mean", "se", "ci_low", "ci_high", "p",
                                                                          "above", "equal", "below")}
                base_mean = sum(v[metric] for v in base.values()) / len(base)
                se = f"{d['se']:.3f}" if not math.isnan(d["se"]) else "-"
                print(f"  {layer:9s} {method:9s} {metric:20s} {args.baseline} {base_mean:8.3f}  "
                      f"{d['mean']:+8.3f} ± {se}  95 % CI {fmt_ci(d, 3)}  p {fmt_p(d['p'])}  "
                      f"(n {len(d['seeds'])}, {d['above']} / {d['equal']} / {d['below']})")
    if args.figure:
        for layer, by_method in spectra.items():
            path = plot_class_spectra({m: normalised_mean(s) for m, s in sorted(by_method.items())},
                                      f"{args.figure}-{layer}.png", classes=list(range(6)),
                                      title=f"class-conditional singular values at {layer} ({args.split} images, "
                                            f"{args.weights} weights, normalised, mean over seeds)")
            print(f"figure: {path}", file=sys.stderr)
    print(json.dumps({"weights": args.weights, "split": args.split, "runs": rows, "paired": paired}))


if __name__ == "__main__":
    main()
