"""`mixsuite run | list | compare`."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import build_config, to_yaml
from .engine import NonFiniteLoss
from .errors import ConfigError, UserError

EPILOG_RUN = """examples:
  mixsuite run tasks/spirals                       # a task folder, default config
  mixsuite run spirals method=manifold alpha=2.0   # a registered name, with overrides
  mixsuite run tasks/spirals -c configs/spirals/smoke.yaml --seeds 0 1 2
  mixsuite run fewshot -c smoke                    # a named config of the task (configs/fewshot/smoke.yaml)
  mixsuite run tasks/graphmix --seeds $(seq 1 10) --jobs 2      # two seeds at a time, one thread each
  torchrun --standalone --nproc_per_node=2 -m mixsuite run tasks/spirals   # several processes / GPUs
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mixsuite", description="Manifold Mixup and its descendants on any model.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="train and evaluate a task", epilog=EPILOG_RUN,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("task", help="a task folder (tasks/spirals), a name (spirals) or an entry point name")
    r.add_argument("overrides", nargs="*", help="key=value config overrides (dotted keys for nested fields)")
    r.add_argument("-c", "--config", action="append", default=[],
                   help="a YAML config file, or the name of one of the task's configs (smoke); repeatable, later wins")
    r.add_argument("--seeds", type=int, nargs="+", help="run once per seed (overrides seed=)")
    r.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train the seeds in N worker processes side by side, each with cores/N threads "
                        "($OMP_NUM_THREADS if set): faster on a CPU for small models (default 1: one after another)")
    r.add_argument("--device", help="auto | cpu | cuda | cuda:N (same as device=...)")
    r.add_argument("--results-dir", help="where run records go (default $MIXSUITE_RESULTS or results/)")
    r.add_argument("--runs-dir", default=os.environ.get("MIXSUITE_RUNS") or "runs",
                   help="checkpoints, metrics.jsonl and plots (default $MIXSUITE_RUNS or runs/)")
    r.add_argument("--resume", default="auto",
                   help="auto (continue the run's own checkpoint if there is one), never, or a checkpoint path")
    r.add_argument("--print-config", action="store_true", help="print the resolved config and exit")

    sub.add_parser("list", help="list the tasks that `mixsuite run NAME` finds")

    c = sub.add_parser("compare", help="tables of mean ± std over seeds from run records")
    c.add_argument("results_dirs", nargs="*", metavar="results_dir",
                   help="results folders, read together (default $MIXSUITE_RESULTS or results/)")
    c.add_argument("--task", action="append", help="only these tasks (repeatable)")
    c.add_argument("--metric", action="append", help="only these metrics, in this order (repeatable)")
    c.add_argument("--method", action="append", help="only these methods (repeatable)")
    c.add_argument("--seeds", type=int, nargs="+", help="only the runs with these seeds (e.g. the seeds a search used)")
    c.add_argument("--format", default="md", choices=["md", "csv"])
    c.add_argument("--digits", type=int, default=4)
    c.add_argument("--plot", metavar="FILE.png", help="also draw every seed of the first --metric (or the primary), with mean ± std "
                        "(and the --reference means as red dashes)")
    c.add_argument("--curves", nargs=2, metavar=("METRIC", "FILE.png"),
                   help="also draw METRIC against the epoch from the runs' metrics.jsonl (mean ± std over seeds)")
    c.add_argument("--reference", action="append", default=[], metavar="FILE.yaml",
                   help="also set published numbers beside ours, with the gap in standard errors "
                        "(repeatable; format in mixsuite/reference.py, e.g. tasks/graphmix/reference.yaml)")
    c.add_argument("--paired", metavar="BASELINE",
                   help="also each config against BASELINE (a method, or a config hash) on the seeds both ran: "
                        "the first --metric's (or the primary's) mean per-seed difference ± its standard error, "
                        "and on how many seeds it is above / equal to / below the baseline")
    return p


def cmd_run(args) -> int:
    from . import runner, task as task_mod
    from .results import results_dir

    spec = task_mod.resolve(args.task)
    task_cls = spec.load()
    overrides = list(args.overrides) + ([f"device={args.device}"] if args.device else [])
    args.config = [spec.config_file(c) for c in args.config]  # `-c smoke`: one of the task's named configs
    cfg = build_config(task_cls.Config, args.config, overrides)
    if args.print_config:
        print(to_yaml(cfg), end="")
        return 0
    seeds = args.seeds if args.seeds else [cfg.seed]
    from .parallel import check_can_fork_seeds, run_seeds

    check_can_fork_seeds(args.jobs)
    if args.jobs > 1 and len(seeds) > 1:
        run_seeds(args.task, args.config, overrides, seeds, args.jobs, results_dir=results_dir(args.results_dir),
                  runs_dir=args.runs_dir, resume=args.resume)
        return 0
    from dataclasses import replace

    for seed in seeds:
        runner.run(task_cls, replace(cfg, seed=seed), results_dir=results_dir(args.results_dir),
                   runs_dir=args.runs_dir, resume=args.resume)
    return 0


def cmd_list(args) -> int:
    from .task import discover

    found = discover()
    if not found:
        print("no tasks found (looked in ./tasks and the 'mixsuite.tasks' entry points)")
        return 0
    width = max(len(n) for n in found)
    for name, spec in sorted(found.items()):
        print(f"{name:<{width}}  {spec.summary():<70}  [{spec.source}]")
    return 0


def cmd_compare(args) -> int:
    from .results import format_table, load_records, plot_rows, results_dir, summarize

    roots = [results_dir(d) for d in args.results_dirs] or [results_dir()]
    records = [r for root in roots
               for r in load_records(root, tasks=args.task, methods=args.method, seeds=args.seeds)]
    if not records:
        wanted = ([f"methods {', '.join(args.method)}"] if args.method else []) + \
                 ([f"seeds {' '.join(map(str, args.seeds))}"] if args.seeds else [])
        with_filters = f" with {' and '.join(wanted)}" if wanted else ""
        raise UserError(f"no finished run records{with_filters} under {', '.join(map(str, roots))} (make some with "
                        f"`mixsuite run ... --results-dir {roots[0]}`)")
    for option in ("reference", "paired"):
        if getattr(args, option) and args.format != "md":
            raise UserError(f"--{option} adds a markdown table; use it with --format md (the default)")
    from .config_diff import config_differences, format_differences
    from .paired import format_paired, paired_differences
    from .reference import compare_to_reference, format_reference, load_reference

    refs = [load_reference(path) for path in args.reference]  # all checked before anything is printed
    rows = summarize(records, args.metric)
    metric = args.metric[0] if args.metric else rows[0]["primary_metric"]
    paired = paired_differences(records, args.paired, metric) if args.paired else None
    legends = None
    if args.format == "md":  # the CSV has no room for a legend
        differences = config_differences(records)
        legends = {task: format_differences(differences, task) for task in {r["task"] for r in rows}}
    print(format_table(rows, args.format, args.metric, args.digits, legends), end="")
    for ref in refs:
        ref_rows = rows if not args.metric or ref["metric"] in args.metric else summarize(records, [ref["metric"]])
        print("\n" + format_reference(compare_to_reference(ref_rows, ref), ref), end="")
    if paired is not None:
        print("\n" + format_paired(paired, args.paired, metric, args.digits), end="")
    if args.plot:
        print(f"plot: {plot_rows(rows, metric, args.plot, refs)}", file=sys.stderr)
    if args.curves:
        from .curves import plot_curves

        try:
            print(f"curves: {plot_curves(records, *args.curves)}", file=sys.stderr)
        except ValueError as e:
            raise UserError(str(e)) from None
    return 0


def main(argv=None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may also come after options (`run TASK -c smoke.yaml alpha=1`)
    stray = [a for a in extra if args.command != "run" or a.startswith("-") or "=" not in a]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    try:
        return {"run": cmd_run, "list": cmd_list, "compare": cmd_compare}[args.command](args)
    except ConfigError as e:
        print(f"mixsuite: config error: {e}", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"mixsuite: error: {e}", file=sys.stderr)
        return 1
    except NonFiniteLoss as e:
        print(f"mixsuite: stopped: {e}", file=sys.stderr)
        return 1
    finally:
        from . import dist

        dist.cleanup()

