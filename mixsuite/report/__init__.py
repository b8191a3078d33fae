"""Reporting: run records, `mixsuite compare` tables, paired differences, published references, config legends,
learning curves and plots. The CLI calls `compare(args)`; the runner writes records with `write_record`.

  records.py      one JSON record per finished run: write, read back, group, mean ± std
  tables.py       one row per group of runs (task, dataset, method, config): markdown or CSV
  config_diff.py  the legend: what sets apart the configs of one dataset and method
  paired.py       each config against a baseline on the seeds both ran
  reference.py    published numbers beside ours, the gap in standard errors
  plots.py        every seed's value per row, the paired differences; curves.py: metrics against the epoch
  curve_stats.py  the curves in numbers: best value, its epoch, the last, the first epoch reaching a value
  spectra.py      the class-conditional singular values of runs that write spectra.json (Figure 6)
  compare.py      `mixsuite compare`: the options put together
"""
from .compare import compare
from .records import git_info, group_key, is_number, load_records, mean_std, results_dir, write_record
from .tables import format_table, summarize

__all__ = ["compare", "format_table", "git_info", "group_key", "is_number", "load_records", "mean_std",
           "results_dir", "summarize", "write_record"]
