"""`mixsuite run | sweep | list | compare`."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import build_config, parse_override, to_yaml
from .engine import NonFiniteLoss
from .errors import ConfigError, UsageError, UserError

EPILOG_RUN = """examples:
  mixsuite run tasks/spirals                       # a task folder, default config
  mixsuite run spirals method=manifold alpha=2.0   # a registered name, with overrides
  mixsuite run tasks/spirals -c configs/spirals/smoke.yaml --seeds 0 1 2
  mixsuite run fewshot -c smoke                    # a named config of the task (configs/fewshot/smoke.yaml)
  mixsuite run tasks/graphmix --seeds $(seq 1 10) --jobs 2      # two seeds at a time, one thread each
  torchrun --standalone --nproc_per_node=2 -m mixsuite run tasks/spirals   # several processes / GPUs
"""


EPILOG_SWEEP = """examples:
  mixsuite sweep spirals alpha=0.5,1,2 'mix_layers=[input],[hidden1],[input,hidden1,hidden2]' --seeds 1 2 3
  mixsuite sweep spirals alpha=0.5,1,2 --seeds 1 2 --dry-run     # the points, their run ids, which are done
  mixsuite sweep spirals alpha=0.5,1,2 --seeds 1 2 --jobs 2      # two worker processes
  mixsuite sweep spirals alpha=0.5,1,2 --seeds 1 2 --ray auto    # Ray tasks on a running cluster
  mixsuite sweep fewshot -c configs/fewshot/omniglot-lake.yaml --point method=baselinepp \
      --point 'method=s2m2 epochs=30' --seeds 1 2 3                 # settings that go together: one --point each
  mixsuite sweep metric method=erm,manifold patience=15 --seeds 1 2 3 --extend patience=5   # train the patience-5 runs on
"""

EXTEND_HELP = ("start each run from the run of the same config and seed with fewer epochs or less patience "
               "(e.g. --extend epochs=40 --extend patience=5; its checkpoint and metrics.jsonl in --runs-dir) instead "
               "of from scratch; it gives the numbers of this config from scratch. More epochs only where training "
               "does not depend on their number (no schedule over the run), which the task declares; the record "
               "names that run as extended_from")


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
    r.add_argument("--results-dir", help="where run records go (default $MIXSUITE_RESULTS, else runs/results; the "
                                         "repository's curated tables: --results-dir results)")
    r.add_argument("--runs-dir", default=os.environ.get("MIXSUITE_RUNS") or "runs",
                   help="checkpoints, metrics.jsonl and plots (default $MIXSUITE_RUNS or runs/)")
    r.add_argument("--resume", default="auto",
                   help="auto (continue the run's own checkpoint if there is one), never, or a checkpoint path")
    r.add_argument("--extend", action="append", default=[], metavar="KEY=VALUE", help=EXTEND_HELP)
    r.add_argument("--reevaluate", action="store_true",
                   help="a run whose finished record exists is skipped; with this flag it is evaluated again from its "
                        "checkpoint (trained again with --resume never), the old record kept beside as .old")
    r.add_argument("--wait-lock", action="store_true",
                   help="if another process is training the same run, wait for it instead of exiting (code 2)")
    r.add_argument("--print-config", action="store_true", help="print the resolved config and exit")

    w = sub.add_parser("sweep", help="a grid of runs: the product of comma-separated values, times the seeds",
                       epilog=EPILOG_SWEEP, formatter_class=argparse.RawDescriptionHelpFormatter)
    w.add_argument("task", help="a task folder (tasks/spirals), a name (spirals) or an entry point name")
    w.add_argument("grid", nargs="*", metavar="key=v1,v2,...",
                   help="config keys and their values (YAML each; bracket a value that holds commas: "
                        "'mix_layers=[input],[input,layer1]'); a single value is a plain override")
    w.add_argument("-c", "--config", action="append", default=[], help="a YAML config file (repeatable, later wins)")
    w.add_argument("--point", action="append", metavar="'KEY=VALUE ...'",
                   help="settings that go together, one value of one more axis of the grid (repeatable): "
                        "--point method=baselinepp --point 'method=s2m2 epochs=30'")
    w.add_argument("--seeds", nargs="+", metavar="SEED",
                   help="run every point once per seed (default: the config's seed); key=value items may follow")
    w.add_argument("--dry-run", action="store_true", help="list the points, their run ids and which are done; run none")
    w.add_argument("--jobs", type=int, default=1, metavar="N", help="run the points in N worker processes")
    w.add_argument("--extend", action="append", default=[], metavar="KEY=VALUE", help=EXTEND_HELP.replace("each run", "each point"))
    w.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run each point as a Ray task: on a local Ray instance, or on the cluster at ADDRESS "
                        "(auto, ray://host:port); the nodes must share the data root and the results and runs "
                        "folders. Needs the ray extra")
    w.add_argument("--ray-cpus", type=float, default=1, metavar="N", help="CPUs per point on Ray (default 1)")
    w.add_argument("--ray-gpus", type=float, default=0, metavar="N", help="GPUs per point on Ray (default 0)")
    w.add_argument("--device", help="auto | cpu | cuda | cuda:N (same as device=...)")
    w.add_argument("--results-dir", help="where run records go (default $MIXSUITE_RESULTS or results/)")
    w.add_argument("--runs-dir", default=os.environ.get("MIXSUITE_RUNS", "runs"),
                   help="checkpoints, metrics.jsonl, plots and each point's sweep.log (default $MIXSUITE_RUNS or runs/)")

    sub.add_parser("list", help="list the tasks that `mixsuite run NAME` finds")

    c = sub.add_parser("compare", help="tables of mean ± std over seeds from run records")
    c.add_argument("results_dirs", nargs="*", metavar="results_dir",
                   help="results folders, read together (default $MIXSUITE_RESULTS, else runs/results)")
    c.add_argument("--task", action="append", help="only these tasks (repeatable)")
    c.add_argument("--metric", action="append", help="only these metrics, in this order (repeatable)")
    c.add_argument("--method", action="append", help="only these methods (repeatable)")
    c.add_argument("--seeds", type=int, nargs="+", help="only the runs with these seeds (e.g. the seeds a search used)")
    c.add_argument("--where", action="append", metavar="KEY=VALUE",
                   help="only the runs whose config has this value (repeatable; dotted keys for nested settings, "
                        "e.g. --where lake_runs=true --where epochs=40; KEY=V1,V2: any of the values)")
    c.add_argument("--format", default="md", choices=["md", "csv"])
    c.add_argument("--digits", type=int, default=4)
    c.add_argument("--plot", metavar="FILE.png", help="also draw every seed of the first --metric (or the primary), with mean ± std "
                        "(and the --reference means as red dashes)")
    c.add_argument("--curves", nargs=2, metavar=("METRIC[,METRIC...]", "FILE.png"),
                   help="also draw METRIC against the epoch from the runs' metrics.jsonl (mean ± std over seeds); "
                        "several, comma-separated, one panel each (e.g. train_acc,loss,val_err,val_nll)")
    c.add_argument("--curve-stats", metavar="METRIC[,METRIC...]",
                   help="also the curves in numbers, from the runs' metrics.jsonl: per config and metric the range "
                        "over seeds of the best value, its epoch and the last value (e.g. val_nll,train_acc)")
    c.add_argument("--reach", action="append", metavar="METRIC=VALUE",
                   help="with --curve-stats: also the first epoch each seed's METRIC reached VALUE (at or beyond it "
                        "in the better direction; repeatable), e.g. --reach train_acc=0.99")
    c.add_argument("--spectra", metavar="FILE.png",
                   help="also draw the class-conditional singular values of the last hidden layer from the runs' "
                        "spectra.json (the blog's Figure 6: first 6 classes, normalised, mean over seeds)")
    c.add_argument("--reference", action="append", default=[], metavar="FILE.yaml",
                   help="also set published numbers beside ours, with the gap in standard errors "
                        "(repeatable; format in mixsuite/report/reference.py, e.g. tasks/graphmix/reference.yaml)")
    c.add_argument("--paired", metavar="BASELINE",
                   help="also each config against BASELINE (a method, or a config hash) on the seeds both ran: "
                        "each --metric's (or the primary's) mean per-seed difference ± its standard error, "
                        "and on how many seeds it is above / equal to / below the baseline (of several baseline "
                        "configs, the nearest: most shared seeds, then fewest differing settings)")
    c.add_argument("--paired-plot", metavar="FILE.png",
                   help="with --paired: draw the per-seed differences (dots) and their mean ± 2 SE for every config, "
                        "one panel for each --metric, a line at zero")
    c.add_argument("--grid", nargs=2, metavar=("ROW_KEY", "COL_KEY"),
                   help="instead of the table: the first --metric's (or the primary's) mean ± std over seeds with "
                        "rows and columns the values of two config keys (dotted for nested ones), per task, dataset "
                        "and method, the best cell in bold; with --plot a heatmap")
    c.add_argument("--across-tasks", action="store_true",
                   help="instead of the table: one table for every task (rows methods, columns task/dataset), the "
                        "primary metric and the paired difference against each task's baseline; a markdown page "
                        "with links to the results folder's pages (results/README.md is made with it)")
    return p


def cmd_run(args) -> int:
    from . import runner, task as task_mod
    from .report import results_dir

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
    options = {"reevaluate": args.reevaluate, "wait_lock": args.wait_lock, "extend": parse_extend(args.extend)}
    if args.jobs > 1 and len(seeds) > 1:
        run_seeds(args.task, args.config, overrides, seeds, args.jobs, results_dir=results_dir(args.results_dir),
                  runs_dir=args.runs_dir, resume=args.resume, **options)
        return 0
    from dataclasses import replace

    for seed in seeds:
        runner.run(task_cls, replace(cfg, seed=seed), results_dir=results_dir(args.results_dir),
                   runs_dir=args.runs_dir, resume=args.resume, **options)
    return 0


def parse_extend(items: list[str]) -> dict:
    """`--extend epochs=40 --extend patience=5` as {"epochs": 40, "patience": 5} (mixsuite.extend checks them)."""
    return {k: v for o in items for k, v in parse_override(o).items()}


def cmd_sweep(args) -> int:
    from .report import results_dir
    from .sweep import sweep

    seeds = [a for a in args.seeds or [] if "=" not in a]   # `--seeds 1 2 alpha=1,2`: the grid goes on after the seeds
    grid = list(args.grid) + [a for a in args.seeds or [] if "=" in a] + ([f"device={args.device}"] if args.device else [])
    bad = [a for a in seeds if not a.lstrip("-").isdigit()]
    if bad:
        raise ConfigError(f"--seeds takes integers, got {' '.join(bad)}")
    if args.ray is not None and "=" in args.ray:  # `--ray alpha=1,2`: the grid item is not an address
        grid, args.ray = [args.ray] + grid, "local"
    return sweep(args.task, grid, config_files=args.config, seeds=[int(a) for a in seeds] or None, results_dir=results_dir(args.results_dir),
                 runs_dir=args.runs_dir, jobs=args.jobs, ray=args.ray, ray_cpus=args.ray_cpus,
                 ray_gpus=args.ray_gpus, dry_run=args.dry_run, bundles=args.point, extend=parse_extend(args.extend))


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
    from .report import compare

    return compare(args)


def main(argv=None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may also come after options (`run TASK -c smoke.yaml alpha=1`)
    stray = [a for a in extra if args.command not in ("run", "sweep") or a.startswith("-") or "=" not in a]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra and args.command == "run":
        args.overrides = list(args.overrides) + extra
    elif extra:
        args.grid = list(args.grid) + extra
    try:
        return {"run": cmd_run, "sweep": cmd_sweep, "list": cmd_list, "compare": cmd_compare}[args.command](args)
    except ConfigError as e:
        print(f"mixsuite: config error: {e}", file=sys.stderr)
        return 2
    except UsageError as e:
        print(f"mixsuite: error: {e}", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"mixsuite: error: {e}", file=sys.stderr)
        return e.exit_code
    except NonFiniteLoss as e:
        print(f"mixsuite: stopped: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:   # the checkpoint and the lock are left consistent: a run resumes where it was
        print("mixsuite: interrupted; the same command resumes", file=sys.stderr)
        return 130
    finally:
        from . import dist

        dist.cleanup()

