"""`mixsuite run | sweep | list | compare`."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import build_config, parse_override, to_yaml
from .errors import ConfigError, NonFiniteLoss, UsageError, UserError   # no torch here: --help, list and compare

EPILOG_RUN = """examples:
  mixsuite run tasks/spirals                       # a task folder, default config
  mixsuite run spirals method=manifold alpha=2.0   # a registered name, with overrides
  mixsuite run tasks/spirals -c configs/spirals/smoke.yaml --seeds 0 1 2
  mixsuite run fewshot -c smoke                    # a named config of the task (configs/fewshot/smoke.yaml)
  mixsuite run tasks/graphmix --seeds $(seq 1 10) --jobs 2      # two seeds at a time, one thread each
  mixsuite run tasks/spirals --seeds 0 1 2 3 4 seeds_batch=5     # five seeds as one stacked model
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


def _launch_options() -> argparse.ArgumentParser:
    """The options `run` and `sweep` share (one parent parser, so the two cannot drift apart)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("task", help="a task folder (tasks/spirals), a name (spirals) or an entry point name")
    p.add_argument("-c", "--config", action="append", default=[],
                   help="a YAML config file, or the name of one of the task's configs (smoke); repeatable, later wins")
    p.add_argument("--seeds", nargs="+", metavar="SEED",
                   help="run once per seed (overrides seed=; default: the config's seed); key=value items may follow")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train the runs in N worker processes side by side, each with cores/N threads "
                        "($OMP_NUM_THREADS if set): faster on a CPU for small models (default 1: one after another)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (same as device=...)")
    p.add_argument("--results-dir", help="where run records go (default $MIXSUITE_RESULTS, else runs/results; the "
                                         "repository's curated tables: --results-dir results)")
    p.add_argument("--runs-dir", default=os.environ.get("MIXSUITE_RUNS") or "runs",
                   help="checkpoints, metrics.jsonl, plots and a sweep's sweep.log (default $MIXSUITE_RUNS or runs/)")
    p.add_argument("--extend", action="append", default=[], metavar="KEY=VALUE", help=EXTEND_HELP)
    return p


def seeds_and_items(values: list[str] | None) -> tuple[list[int], list[str]]:
    """`--seeds 1 2 alpha=1,2`: the seeds, and the key=value items that came after them."""
    seeds = [a for a in values or [] if "=" not in a]
    bad = [a for a in seeds if not a.lstrip("-").isdigit()]
    if bad:
        raise ConfigError(f"--seeds takes integers, got {' '.join(bad)}")
    return [int(a) for a in seeds], [a for a in values or [] if "=" in a]


def unique_seeds(seeds: list[int]) -> list[int]:
    """The seeds in order, each once; a seed given twice is said so (it is one run)."""
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        print(f"seed{'s' * (len(twice) > 1)} {' '.join(map(str, twice))} given more than once: "
              f"{'each runs' if len(twice) > 1 else 'it runs'} once")
    return list(dict.fromkeys(seeds))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mixsuite", description="Manifold Mixup and its descendants on any model.")
    sub = p.add_subparsers(dest="command", required=True)

    launch = _launch_options()
    r = sub.add_parser("run", help="train and evaluate a task", epilog=EPILOG_RUN, parents=[launch],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("overrides", nargs="*", help="key=value config overrides (dotted keys for nested fields)")
    r.add_argument("--resume", default="auto",
                   help="auto (continue the run's own checkpoint if there is one), never, or a checkpoint path")
    r.add_argument("--reevaluate", action="store_true",
                   help="a run whose finished record exists is skipped; with this flag it is evaluated again from its "
                        "checkpoint (trained again with --resume never), the old record kept beside as .old")
    r.add_argument("--wait-lock", action="store_true",
                   help="if another process is training the same run, wait for it instead of exiting (code 2)")
    r.add_argument("--print-config", action="store_true", help="print the resolved config and exit")

    w = sub.add_parser("sweep", help="a grid of runs: the product of comma-separated values, times the seeds",
                       epilog=EPILOG_SWEEP, parents=[launch], formatter_class=argparse.RawDescriptionHelpFormatter)
    w.add_argument("grid", nargs="*", metavar="key=v1,v2,...",
                   help="config keys and their values (YAML each; bracket a value that holds commas: "
                        "'mix_layers=[input],[input,layer1]'); a single value is a plain override")
    w.add_argument("--point", action="append", metavar="'KEY=VALUE ...'",
                   help="settings that go together, one value of one more axis of the grid (repeatable): "
                        "--point method=baselinepp --point 'method=s2m2 epochs=30'")
    w.add_argument("--dry-run", action="store_true", help="list the points, their run ids and which are done; run none")
    w.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run each point as a Ray task: on a local Ray instance, or on the cluster at ADDRESS "
                        "(auto, ray://host:port); the nodes must share the data root and the results and runs "
                        "folders. Needs the ray extra")
    w.add_argument("--ray-cpus", type=float, default=1, metavar="N", help="CPUs per point on Ray (default 1)")
    w.add_argument("--ray-gpus", type=float, default=0, metavar="N", help="GPUs per point on Ray (default 0)")

    sub.add_parser("list", help="list the tasks that `mixsuite run NAME` finds")

    c = sub.add_parser("compare", help="tables of mean ± std over seeds from run records")
    c.add_argument("results_dirs", nargs="*", metavar="results_dir",
                   help="results folders, read together (default $MIXSUITE_RESULTS, else runs/results)")
    c.add_argument("--task", action="append", help="only these tasks (repeatable)")
    c.add_argument("--metric", action="append",
                   help="only these metrics, in this order (repeatable); `all` for every metric (default: the task's "
                        "headline metrics)")
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
                        "each --metric's (or the primary's) mean per-seed difference ± its standard error, its 95 %% "
                        "CI (Student's t, n - 1 df), p, n to decide, and on how many seeds it is above / equal to / "
                        "below the baseline (of several baseline configs, the nearest: most shared seeds, then fewest "
                        "differing settings)")
    c.add_argument("--holm", action="store_true",
                   help="with --paired: Holm-adjust the p-values of each paired table together (the caption says so)")
    c.add_argument("--paired-plot", metavar="FILE.png",
                   help="with --paired: draw the per-seed differences (dots) and their mean with its 95 %% CI for every config, "
                        "one panel for each --metric, a line at zero")
    c.add_argument("--grid", nargs=2, metavar=("ROW_KEY", "COL_KEY"),
                   help="instead of the table: the first --metric's (or the primary's) mean ± std over seeds with "
                        "rows and columns the values of two config keys (dotted for nested ones), per task, dataset "
                        "and method, the best cell in bold; with --plot a heatmap")
    c.add_argument("--across-tasks", action="store_true",
                   help="instead of the table: the results' front page (results/README.md is made with it): the claims "
                        "table and, per task, its headline protocols (methods × headline metrics, Δ against the "
                        "baseline with its 95 %% CI), from the `tasks:` of RESULTS/claims.yaml (or --claims); without "
                        "one, one table for every task with its primary metric")
    c.add_argument("--claims", metavar="FILE.yaml",
                   help="instead of the table: the claims ledger, each declared claim's verdict from its primary "
                        "comparison (format: docs/claims.md); with --across-tasks: the claims table of the front page "
                        "(default there: claims.yaml in the first results folder)")
    c.add_argument("--all", action="store_true",
                   help="with --across-tasks: every config group, not only the headline protocols")
    c.add_argument("--show-hash", action="store_true",
                   help="with --across-tasks: the config hash beside each config group's name")
    c.add_argument("--summaries", action="store_true",
                   help="with --across-tasks: also write a short generated summary at the top of each task page "
                        "(RESULTS/<task>.md, between markers; the rest of the page is left as it is)")
    return p


def cmd_run(args) -> int:
    from dataclasses import replace

    from . import runner, task as task_mod
    from .parallel import check_jobs
    from .report import results_dir
    from .sweep import sweep

    spec = task_mod.resolve(args.task)
    task_cls = spec.load()
    seeds, items = seeds_and_items(args.seeds)
    overrides = list(args.overrides) + items + ([f"device={args.device}"] if args.device else [])
    args.config = [spec.config_file(c) for c in args.config]  # `-c smoke`: one of the task's named configs
    cfg = build_config(task_cls.Config, args.config, overrides)
    if args.print_config:
        print(to_yaml(cfg), end="")
        return 0
    check_jobs(args.jobs)
    seeds = unique_seeds(seeds or [cfg.seed])
    options = {"resume": args.resume, "reevaluate": args.reevaluate, "wait_lock": args.wait_lock}
    batch = getattr(cfg, "seeds_batch", 1)
    if batch > 1:   # S seeds at a time as one stacked model (mixsuite.stacked)
        from .stacked import run_stacked

        if args.jobs > 1:
            raise UsageError("seeds_batch trains its seeds in one process: leave --jobs out")
        for i in range(0, len(seeds), batch):
            run_stacked(task_cls, [replace(cfg, seed=s) for s in seeds[i:i + batch]],
                        results_dir=results_dir(args.results_dir), runs_dir=args.runs_dir,
                        extend=parse_extend(args.extend), **options)
        return 0
    if args.jobs > 1 and len(seeds) > 1:   # N runs in worker processes: a sweep over the seeds
        return sweep(args.task, overrides, config_files=args.config, seeds=seeds, grid=False, jobs=args.jobs,
                     results_dir=results_dir(args.results_dir), runs_dir=args.runs_dir,
                     extend=parse_extend(args.extend), run_options=options)
    for seed in seeds:
        runner.run(task_cls, replace(cfg, seed=seed), results_dir=results_dir(args.results_dir),
                   runs_dir=args.runs_dir, extend=parse_extend(args.extend), **options)
    return 0


def parse_extend(items: list[str]) -> dict:
    """`--extend epochs=40 --extend patience=5` as {"epochs": 40, "patience": 5} (mixsuite.extend checks them)."""
    return {k: v for o in items for k, v in parse_override(o).items()}


def cmd_sweep(args) -> int:
    from .report import results_dir
    from .sweep import sweep

    seeds, items = seeds_and_items(args.seeds)   # `--seeds 1 2 alpha=1,2`: the grid goes on after the seeds
    grid = list(args.grid) + items + ([f"device={args.device}"] if args.device else [])
    if args.ray is not None and "=" in args.ray:  # `--ray alpha=1,2`: the grid item is not an address
        grid, args.ray = [args.ray] + grid, "local"
    return sweep(args.task, grid, config_files=args.config, seeds=seeds or None,
                 results_dir=results_dir(args.results_dir), runs_dir=args.runs_dir, jobs=args.jobs, ray=args.ray, ray_cpus=args.ray_cpus,
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
    except ModuleNotFoundError as e:  # imported late by a task (torchaudio): name the extra that installs it
        from .extras import missing_extra

        if (extra := missing_extra(e, f"mixsuite {args.command}")) is None:
            raise
        print(f"mixsuite: error: {extra}", file=sys.stderr)
        return extra.exit_code
    except KeyboardInterrupt:   # the checkpoint and the lock are left consistent: a run resumes where it was
        print("mixsuite: interrupted; the same command resumes", file=sys.stderr)
        return 130
    finally:
        if "mixsuite.dist" in sys.modules:  # no process group without it (and no torch import to find that out)
            sys.modules["mixsuite.dist"].cleanup()

