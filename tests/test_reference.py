"""`mixsuite compare --reference`: published numbers beside ours, the gap with Welch's CI and p, loud file errors."""
import math

import pytest

from mixsuite.cli import main
from mixsuite.errors import ConfigError
from mixsuite.report.reference import compare_to_reference, format_reference, load_reference, verdict
from mixsuite.report.stats import unpaired
from mixsuite.report import summarize, write_record

from conftest import ROOT


def rec(method, seed, acc, dataset="cora"):
    return {"task": "t", "dataset": dataset, "method": method, "seed": seed, "run_id": f"{dataset}-{method}-{seed}",
            "metrics": {"test_acc": acc}, "primary_metric": "test_acc", "config": {}, "config_hash": "h",
            "status": "finished"}


def write_ref(tmp_path, text, name="ref.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


REF = """metric: test_acc
scale: 100
entries:
  - {dataset: cora, method: mix, mean: 82.0, std: 1.0, n: 4, source: paper}
  - {dataset: cora, method: erm, mean: 70.0, source: other paper}
  - {dataset: pubmed, method: mix, mean: 79.0, source: nobody ran it}
"""


def test_gap_has_welchs_ci_and_p(tmp_path):
    from scipy import stats

    records = [rec("mix", s, a) for s, a in enumerate([0.80, 0.81, 0.82])] + [rec("erm", 0, 0.71), rec("erm", 1, 0.73)]
    ref = load_reference(write_ref(tmp_path, REF))
    lines = {x["row"]["method"]: x for x in compare_to_reference(summarize(records), ref)}
    assert set(lines) == {"mix", "erm"}  # pubmed has no runs: no line
    mix = lines["mix"]
    assert mix["mean"] == pytest.approx(81.0) and mix["std"] == pytest.approx(1.0) and mix["n"] == 3
    se = math.sqrt(1.0 ** 2 / 3 + 1.0 ** 2 / 4)  # ours and the reference's, both from std and n
    assert mix["delta"] == pytest.approx(-1.0) and mix["se"] == pytest.approx(se)
    welch = stats.ttest_ind_from_stats(81.0, 1.0, 3, 82.0, 1.0, 4, equal_var=False)
    assert mix["p"] == pytest.approx(welch.pvalue)
    df = se ** 4 / ((1 / 3) ** 2 / 2 + (1 / 4) ** 2 / 3)  # Welch–Satterthwaite, by hand
    assert mix["df"] == pytest.approx(df)
    half = stats.t.ppf(0.975, df) * se
    assert (mix["ci_low"], mix["ci_high"]) == pytest.approx((-1.0 - half, -1.0 + half))
    erm = lines["erm"]  # the reference gives no std or n: only our own standard error counts, df = n - 1
    assert erm["delta"] == pytest.approx(2.0) and erm["se"] == pytest.approx(math.sqrt(2.0) / math.sqrt(2))
    assert erm["df"] == 1 and erm["p"] == pytest.approx(stats.ttest_1samp([71.0, 73.0], 70.0).pvalue)
    table = format_reference(compare_to_reference(summarize(records), ref), ref)
    ci = f"[{-1.0 - half:+.2f}, {-1.0 + half:+.2f}]"
    assert f"| cora | mix | h | 81.00 ± 1.00 (3) | 82.00 ± 1.00 (4) | -1.00 | {ci} | 0.25 | inconclusive | paper |" \
        in table
    erm_row = ("| cora | erm | h | 72.00 ± 1.41 (2) | 70.00 | +2.00 | [-10.71, +14.71] | 0.30 | inconclusive | "
               "other paper |")
    assert erm_row in table
    assert "Welch's 95 % CI" in table


def test_a_published_method_no_row_runs_is_listed_beside_the_table_and_drawn_across_the_plot(tmp_path,
                                                                                              monkeypatch):
    from mixsuite.report.plots import plot_rows
    from mixsuite.report.reference import unmatched_entries

    text = REF + "  - {dataset: cora, method: people, mean: 95.5, source: Lake et al.}\n"
    ref = load_reference(write_ref(tmp_path, text))
    rows = summarize([rec("mix", s, a) for s, a in enumerate([0.80, 0.81, 0.82])])
    # erm and people are published on cora but run by no row; pubmed has no row at all, so nothing there is listed
    assert [e["method"] for e in unmatched_entries(rows, ref)] == ["erm", "people"]
    table = format_reference(compare_to_reference(rows, ref), ref, unmatched_entries(rows, ref))
    assert "| cora | people (published) | | | 95.50 | | | | beside no row | Lake et al. |" in table
    assert "| cora | mix | h | 81.00 ± 1.00 (3) |" in table and "pubmed" not in table
    import matplotlib.pyplot as plt

    seen, original = [], plt.Axes.axhline
    monkeypatch.setattr(plt.Axes, "axhline", lambda ax, y, **kw: seen.append(y) or original(ax, y, **kw))
    assert plot_rows(rows, "test_acc", tmp_path / "acc.png", [ref]).stat().st_size > 1000
    assert seen == pytest.approx([0.70, 0.955])


def test_verdicts_follow_the_one_rule():
    assert verdict(dict(unpaired(85.0, 0.5, 10, 84.0), delta=1.0)) == "above"  # CI wholly above the published mean
    below = unpaired(83.0, 0.5, 10, 84.0, 0.5, 10)
    assert verdict(dict(below, delta=below["mean"])) == "below"
    level = unpaired(83.9, 0.6, 100, 84.0, 0.6, 100)  # -0.1, SE 0.085: the CI spans zero
    assert verdict(dict(level, delta=level["mean"])) == "inconclusive"
    two = unpaired(90.0, 0.1, 2, 80.0)  # far off, but n = 2 decides nothing
    assert two["ci_low"] > 0 and verdict(dict(two, delta=two["mean"])) == "inconclusive"
    one = unpaired(90.0, 0.0, 1, 80.0)  # one seed: no spread, no CI
    assert math.isnan(one["p"]) and verdict(dict(one, delta=one["mean"])) == "inconclusive"


@pytest.mark.parametrize("text, message", [
    ("entries: []\n", "'metric' must name"),
    ("metric: acc\nentries: []\n", "'entries' must be a non-empty list"),
    ("metric: acc\nscale: -1\nentries: [{dataset: a, method: b, mean: 1, source: s}]\n", "'scale' must be a positive"),
    ("metric: acc\nentries: [{dataset: a, method: b, source: s}]\n", "entry 1: missing 'mean'"),
    ("metric: acc\nentries: [{dataset: a, method: b, mean: 1, source: s}, {dataset: a, method: b, mean: 1, "
     "source: s, sd: 2}]\n", "entry 2: unknown key 'sd'"),
    ("metric: acc\nentries: [{dataset: a, method: b, mean: high, source: s}]\n", "'mean' has the wrong type"),
    ("metric: acc\ntable: x\nentries: []\n", "unknown key(s) ['table']"),
    ("metric: [acc\n", "not valid YAML"),
])
def test_bad_reference_files_name_the_problem(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        load_reference(write_ref(tmp_path, text))
    assert message in str(err.value) and "ref.yaml" in str(err.value)


def test_cli_compare_with_reference(tmp_path, capsys):
    for s, a in enumerate([0.80, 0.81, 0.82]):
        write_record(tmp_path / "results", rec("mix", s, a))
    good = write_ref(tmp_path, REF)
    png = tmp_path / "acc.png"
    assert main(["compare", str(tmp_path / "results"), "--reference", str(good), "--plot", str(png)]) == 0
    assert png.stat().st_size > 1000
    out = capsys.readouterr().out
    assert "### test_acc beside ref.yaml (×100)" in out
    assert "| -1.00 | [-3.04, +1.04] | 0.25 | inconclusive | paper |" in out
    bad = write_ref(tmp_path, "metric: test_acc\nentries: [{dataset: cora}]\n", "bad.yaml")
    assert main(["compare", str(tmp_path / "results"), "--reference", str(bad)]) == 2
    assert "bad.yaml, entry 1: missing 'method'" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "results"), "--reference", str(good), "--format", "csv"]) == 1
    assert main(["compare", str(tmp_path / "results"), "--reference", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml' does not exist" in capsys.readouterr().err


def test_graphmix_reference_file_loads():
    ref = load_reference(ROOT / "tasks/graphmix/reference.yaml")
    assert ref["metric"] == "best_test_acc" and ref["scale"] == 100
    assert {(e["dataset"], e["method"]) for e in ref["entries"]} >= {("cora", "graphmix"), ("citeseer", "graphmix")}
