"""`mixsuite compare`: read the records, print the tables the options ask for, draw the figures."""
from __future__ import annotations

import sys

from ..errors import UsageError, UserError
from .config_diff import config_differences, format_differences
from .paired import format_paired, paired_differences
from .plots import plot_paired, plot_rows
from .records import is_number, load_records, results_dir
from .reference import compare_to_reference, format_reference, load_reference, unmatched_entries
from .tables import format_table, summarize
from .where import apply_where, parse_where


def compare(args, out=None, err=None) -> int:
    """Everything `mixsuite compare` does, from its parsed arguments (see cli.py for their meaning)."""
    out, err = out or sys.stdout, err or sys.stderr
    roots = [results_dir(d) for d in args.results_dirs] or [results_dir()]
    if getattr(args, "claims", None) and not getattr(args, "across_tasks", False):
        return _claims_ledger(args, roots, out)
    skipped = []
    records = [r for root in roots
               for r in load_records(root, tasks=args.task, methods=args.method, seeds=args.seeds, skipped=skipped)]
    records = apply_where(records, parse_where(getattr(args, "where", None)))
    if skipped:  # a table with a smaller n must say why
        print(f"skipped {len(skipped)} file{'s' * (len(skipped) > 1)} that {'are' if len(skipped) > 1 else 'is'} "
              "not a usable run record:", file=err)
        for path, why in skipped:
            print(f"  {path}: {why}", file=err)
    if not records:
        raise UserError(nothing_found(args, roots))
    if getattr(args, "holm", False) and not args.paired:
        raise UsageError("--holm adjusts the p-values of the paired tables: give --paired BASELINE with it")
    if getattr(args, "paired_plot", None) and not args.paired:
        raise UsageError("--paired-plot draws the paired differences: give --paired BASELINE with it")
    if getattr(args, "reach", None) and not getattr(args, "curve_stats", None):
        raise UsageError("--reach adds a column to the --curve-stats table: give --curve-stats METRIC[,METRIC...] with it")
    curve_options = None
    if getattr(args, "curve_stats", None):
        from .curve_stats import parse_options

        curve_options = parse_options(args.curve_stats, args.reach)
    for option in ("reference", "paired", "curve_stats"):
        if getattr(args, option, None) and args.format != "md":
            raise UserError(f"--{option.replace('_', '-')} adds a markdown table; use it with --format md (the default)")
    every_metric = args.metric == ["all"]
    if every_metric:
        args.metric = None
    check_metrics(records, args.metric)
    if getattr(args, "grid", None) or getattr(args, "across_tasks", False):
        return _special_views(args, records, roots, out, err)
    refs = [load_reference(path) for path in args.reference]  # all checked before anything is printed
    rows = summarize(records, args.metric)
    metrics = args.metric or [rows[0]["primary_metric"]]
    paired = [(m, paired_differences(records, args.paired, m)) for m in metrics] if args.paired else []
    legends = None
    if args.format == "md":  # the CSV has no room for a legend
        differences = config_differences(records)
        legends = {task: format_differences(differences, task) for task in {r["task"] for r in rows}}
    headline = {} if every_metric or args.metric else declared_headlines(roots)
    print(format_table(rows, args.format, args.metric, args.digits, legends, headline, every_metric), end="",
          file=out)
    for ref in refs:
        ref_rows = rows if not args.metric or ref["metric"] in args.metric else summarize(records, [ref["metric"]])
        print("\n" + format_reference(compare_to_reference(ref_rows, ref), ref, unmatched_entries(ref_rows, ref)),
              end="", file=out)
    for metric, lines in paired:  # one table a metric
        print("\n" + format_paired(lines, args.paired, metric, args.digits, getattr(args, "holm", False)), end="",
              file=out)
    if curve_options:
        print("\n" + _curve_stats_table(records, *curve_options, args.digits), end="", file=out)
    if getattr(args, "paired_plot", None):
        try:
            print(f"paired plot: {plot_paired(paired, args.paired, args.paired_plot)}", file=err)
        except ValueError as e:
            raise UserError(str(e)) from None
    if args.plot:
        print(f"plot: {plot_rows(rows, metrics[0], args.plot, refs)}", file=err)
    if args.curves:
        from .curves import plot_curves

        try:
            print(f"curves: {plot_curves(records, *args.curves)}", file=err)
        except ValueError as e:
            raise UserError(str(e)) from None
    if getattr(args, "spectra", None):
        from .spectra import plot_group_spectra

        try:
            print(f"spectra: {plot_group_spectra(records, args.spectra)}", file=err)
        except ValueError as e:
            raise UserError(str(e)) from None
    return 0


def _claims_ledger(args, roots: list, out) -> int:
    """--claims FILE: the ledger in place of the table (filters and table options do not apply to it)."""
    from .claims import ledger
    from .claims_file import load_claims

    for option in ("task", "method", "seeds", "where", "metric", "paired", "reference", "grid", "curves",
                   "curve_stats", "spectra", "plot"):
        if getattr(args, option, None):
            raise UsageError(f"--{option.replace('_', '-')} does not apply to --claims: each claim declares its own "
                             "comparison in the claims file")
    claims = load_claims(args.claims)   # checked before any record is read
    print(ledger(claims, roots, args.claims), end="", file=out)
    return 0


def _curve_stats_table(records: list[dict], metrics: list[str], reach: dict[str, float], digits: int) -> str:
    from .curve_stats import curve_stats, format_curve_stats

    try:
        return format_curve_stats(curve_stats(records, metrics, reach), digits)
    except ValueError as e:
        raise UserError(str(e)) from None


def nothing_found(args, roots) -> str:
    """Why no record was read: a folder that is not there, or filters that match none of the records that are."""
    absent = [str(root) for root in roots if not root.exists()]
    if absent:
        return (f"{', '.join(absent)}: no such folder; pass the folder the runs wrote their records to "
                "(`mixsuite run ... --results-dir FOLDER`; default $MIXSUITE_RESULTS, else runs/results)")
    wanted = ([f"task {', '.join(args.task)}"] if args.task else []) + \
             ([f"methods {', '.join(args.method)}"] if args.method else []) + \
             ([f"seeds {' '.join(map(str, args.seeds))}"] if args.seeds else []) + \
             list(getattr(args, "where", None) or ())
    where = ', '.join(map(str, roots))
    if not wanted:
        return f"no finished run records under {where} (make some with `mixsuite run ... --results-dir {roots[0]}`)"
    there: dict[str, set] = {}
    for root in roots:
        for r in load_records(root):
            there.setdefault(r["task"], set()).add(r["method"])
    found = "; ".join(f"{task} ({', '.join(sorted(methods))})" for task, methods in sorted(there.items()))
    return (f"no finished run records with {' and '.join(wanted)} under {where}; "
            + (f"the records there are of: {found}" if found else "there are none at all"))


def declared_headlines(roots: list) -> dict[str, list[str]]:
    """{task: its headline metrics} from the `tasks:` of the first results folder's claims.yaml, if it has one."""
    path = roots[0] / "claims.yaml"
    if not path.is_file():
        return {}
    from .claims_file import load_claims

    return {task: list(spec["metrics"]) for task, spec in load_claims(path)["tasks"].items()}


def check_metrics(records: list[dict], wanted) -> None:
    """Every --metric must be a number in at least one record read; else name the ones there are."""
    there = sorted({k for r in records for k, v in r["metrics"].items() if is_number(v)})
    missing = [m for m in wanted or () if m not in there]
    if missing:
        raise UsageError(f"--metric {', '.join(missing)}: no run record read has {'these' if len(missing) > 1 else 'it'}; "
                         f"the metrics there are: {', '.join(there) or '(none)'}")


def _special_views(args, records: list[dict], roots: list, out, err) -> int:
    """--grid (a table and heatmap over two config keys) or --across-tasks (the front page), in place of the table."""
    if args.grid and args.across_tasks:
        raise UsageError("--grid and --across-tasks are two views: give one of them")
    for option in ("reference", "paired", "curves", "curve_stats", "spectra"):
        if getattr(args, option, None):
            raise UsageError(f"--{option.replace('_', '-')} goes with the ordinary table, not with --grid or "
                             "--across-tasks")
    if args.format != "md":
        raise UsageError("--grid and --across-tasks print markdown; leave out --format csv")
    if args.across_tasks:
        if args.plot:
            raise UsageError("--across-tasks draws no figure; leave out --plot")
        claims_path = getattr(args, "claims", None) or (str(roots[0] / "claims.yaml")
                                                         if (roots[0] / "claims.yaml").is_file() else None)
        if claims_path:
            from .claims_file import load_claims

            claims = load_claims(claims_path)
            if claims["tasks"]:
                from .front_page import front_page as claims_front_page

                print(claims_front_page(claims, records, roots, claims_path, getattr(args, "all", False),
                                        getattr(args, "show_hash", False)), end="", file=out)
                if getattr(args, "summaries", False):
                    from .summaries import write_summaries

                    for page in write_summaries(claims, records, roots):
                        print(f"summary: {page}", file=err)
                return 0
        if getattr(args, "summaries", False):
            raise UsageError("--summaries writes each task page's summary from the claims file's `tasks:`; give "
                             "--claims FILE (or put claims.yaml in the results folder)")
        from .across import front_page

        print(front_page(records, roots, args.digits), end="", file=out)
        return 0
    from .grid import format_grid, grid_tables, plot_grids

    metric = args.metric[0] if args.metric else records[0]["primary_metric"]
    grids = grid_tables(records, *args.grid, metric)
    print("\n".join(format_grid(g, args.digits) for g in grids), end="", file=out)
    if args.plot:
        print(f"plot: {plot_grids(grids, args.plot)}", file=err)
    return 0
