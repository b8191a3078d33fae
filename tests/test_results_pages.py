"""The committed pages cannot go stale: results/claims.md and results/README.md are what `mixsuite compare` makes
from the committed records and results/claims.yaml, byte for byte, and every ledger row's command prints the
row's figures."""
import shlex
from pathlib import Path

import pytest

from mixsuite.cli import main
from mixsuite.report.claims import evaluate
from mixsuite.report.claims_file import load_claims
from mixsuite.report.stats import fmt_ci, fmt_p

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("page,argv", [
    ("claims.md", ["compare", "results", "--claims", "results/claims.yaml"]),
    ("README.md", ["compare", "results", "--across-tasks"]),
])
def test_the_committed_page_is_what_compare_prints(page, argv, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    committed = (ROOT / "results" / page).read_text()
    assert printed == committed, (f"results/{page} is stale: regenerate it with "
                                  f"`mixsuite {' '.join(argv)} > results/{page}`")


def test_every_ledger_rows_command_prints_its_figures(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    for claim in evaluate(load_claims("results/claims.yaml"), [Path("results")]):
        result = claim["result"]
        if result is None:
            continue
        argv = shlex.split(result["command"])
        assert argv[:2] == ["mixsuite", "compare"]
        assert main(argv[1:]) == 0, result["command"]
        out = capsys.readouterr().out
        d, spec = result["d"], result["spec"]
        paired_rows = [ln for ln in out.splitlines() if f"| {spec['method']} | {result['method_config']} |" in ln
                       and f"| {spec['baseline']} {result['base_config']} |" in ln]
        assert len(paired_rows) == 1, (claim["id"], result["command"])
        assert f"| {d['n']} | {d['mean']:+.4f}" in paired_rows[0] and f"| {fmt_ci(d, 4)} | {fmt_p(d['p'])} |" in \
            paired_rows[0], (claim["id"], paired_rows[0])
        for side, mean in ((spec["method"], result["method_mean"]), (spec["baseline"], result["base_mean"])):
            config = result["method_config"] if side == spec["method"] else result["base_config"]
            rows = [ln for ln in out.splitlines() if f"| {side} | {config} | {d['n']} |" in ln]
            assert rows and f"| {mean:.4f} ±" in rows[0], (claim["id"], side, rows)


def test_each_task_pages_summary_is_what_compare_writes(monkeypatch):
    from mixsuite.report.records import load_records
    from mixsuite.report.summaries import BEGIN, summary, with_summary

    monkeypatch.chdir(ROOT)
    claims = load_claims("results/claims.yaml")
    records = load_records("results")
    evaluated = evaluate(claims, [Path("results")])
    for task in claims["tasks"]:
        text = (ROOT / "results" / f"{task}.md").read_text()
        assert BEGIN in text, f"results/{task}.md has no summary"
        assert with_summary(text, summary(task, claims, evaluated, records)) == text, (
            f"results/{task}.md's summary is stale: `mixsuite compare results --across-tasks --summaries`")


def test_a_summary_goes_under_the_title_and_replaces_itself():
    from mixsuite.report.summaries import BEGIN, END, with_summary

    page = with_summary("# Title\n\nBody.\n", [BEGIN, "one", END])
    assert page == f"# Title\n\n{BEGIN}\none\n{END}\n\nBody.\n"
    assert with_summary(page, [BEGIN, "two", END]) == f"# Title\n\n{BEGIN}\ntwo\n{END}\n\nBody.\n"


RETIRED = [  # the comparisons issue 39 retired: a gap in standard errors, "within 2 SE", "mean ± SE" read as a verdict
    r"Δ / SE", r"within \d SE", r"(?<!within )(?<!± )(?<![\d.])[−+-]?\d+(?:\.\d+)? SE\b", r"± \d+(?:\.\d+)? \(SE\)",
    r"mean ± 2 SE",  # (a CI written as "mean ± 2.78 SE" is the rule's own half-width, not a verdict)
]


def retired_statistics(text: str) -> list[str]:
    """The passages of a page that compare in the retired format instead of the one rule (stats.py)."""
    import re

    return [m.group(0) for pattern in RETIRED for m in re.finditer(pattern, text)]


def test_the_retired_format_is_caught():
    old = ("| cora | graphmix | 625e4eb036 | 83.77 ± 0.62 (100) | 83.94 ± 0.57 (100) | -0.17 | -2.0 | short |\n"
           "Δ / SE is the gap over its standard error; `within 2 SE`. +0.63 ± 0.31 (SE), −0.9 SE, 4.9 SE (dropout)")
    assert retired_statistics(old) == ["Δ / SE", "within 2 SE", "−0.9 SE", "4.9 SE", "± 0.31 (SE)"]
    assert retired_statistics("+0.63 [−0.07, +1.33], p 0.07; the script's mean ± SE; CI = mean ± 2.78 SE") == []


def test_hand_written_pages_compare_by_the_one_rule():
    pages = [p for p in sorted((ROOT / "results").glob("*.md")) if p.name not in ("claims.md", "README.md")]
    assert len(pages) >= 8
    found = {p.name: retired_statistics(p.read_text()) for p in pages}
    assert not any(found.values()), {k: v for k, v in found.items() if v}
