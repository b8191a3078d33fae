"""Reporting: run records, `mixsuite compare` tables, paired differences, published references, config legends,
learning curves and plots. The CLI calls `compare(args)`; the runner writes records with `write_record`.

  records.py      one JSON record per finished run: write, read back, group, mean ± std
  tables.py       one row per group of runs (task, dataset, method, config): markdown or CSV
  config_diff.py  the legend: what sets apart the configs of one dataset and method
  stats.py        the statistics of every paired comparison: mean Δ, SE, 95 % CI (Student's t), p, Holm, n to decide
  paired.py       each config against a baseline on the seeds both ran
  claims_file.py  a claims file (YAML), checked; claims.py: the ledger, each verdict by rule from its primary
  front_page.py   the results' front page from a claims file; summaries.py: the summary atop each task page
  units.py        values in their units with 3 significant digits, Δ with its CI
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
