"""Declared claims: `mixsuite compare RESULTS --claims FILE` decides each verdict by rule from its primary."""
import re
import shlex
import textwrap

import pytest

from mixsuite.cli import main
from mixsuite.errors import ConfigError
from mixsuite.report import write_record
from mixsuite.report.claims_file import check_claims


def rec(method, seed, metrics, chash=None, task="t", dataset="d", **config):
    chash = chash or f"{method}-h"
    return {"task": task, "dataset": dataset, "method": method, "seed": seed, "metrics": metrics,
            "run_id": f"{dataset}-{method}-{chash}-s{seed}", "primary_metric": "acc", "config_hash": chash,
            "config": {"seed": seed, "method": method, **config}, "status": "finished"}


BASE = [0.80, 0.82, 0.84, 0.86]


def write_runs(folder):
    """mix is better than erm by .05 .04 .03 (+ seed 3 alone); bad is worse by .02 .03 .04; noisy: +.1 −.1 +.05."""
    for seed, acc in enumerate(BASE[:3]):
        write_record(folder, rec("erm", seed, {"acc": acc, "nll": 1.0}, epochs=10))
        write_record(folder, rec("mix", seed, {"acc": acc + [0.05, 0.04, 0.03][seed], "nll": 0.9}, epochs=10))
        write_record(folder, rec("bad", seed, {"acc": acc - [0.02, 0.03, 0.04][seed]}, epochs=10))
        write_record(folder, rec("noisy", seed, {"acc": acc + [0.1, -0.1, 0.05][seed]}, epochs=10))
    write_record(folder, rec("mix", 3, {"acc": 0.9, "nll": 0.9}, epochs=10))
    write_record(folder, rec("mix", 0, {"acc": 0.5}, chash="mix-long", epochs=20))   # a second config of mix
    write_record(folder, rec("lone", 7, {"acc": 0.5}, epochs=10))                    # no seed shared with erm


def claims_file(tmp_path, body):
    path = tmp_path / "claims.yaml"
    path.write_text(textwrap.dedent(body))
    return str(path)


LEDGER = """
metrics:
  acc: {label: accuracy, unit: "%", scale: 100}
claims:
  - id: 1
    claim: mixing helps
    primary: {task: t, where: {epochs: 10}, method: mix, baseline: erm, metric: acc, expect: higher}
    secondary:
      - {task: t, where: {epochs: 10}, method: mix, baseline: erm, metric: nll, expect: lower}
      - {figure: "0.98x the time of a step", source: bench.md, command: "python bench/x.py"}
    note: the long runs are pending
  - id: 2
    claim: bad helps
    primary: {task: t, where: {epochs: 10}, method: bad, baseline: erm, metric: acc, expect: higher}
  - id: 3
    claim: noisy helps
    primary: {task: t, method: noisy, baseline: erm, metric: acc, expect: higher}
  - id: 4
    claim: lone helps
    primary: {task: t, method: lone, baseline: erm, metric: acc, expect: higher}
  - id: 5
    claim: it is cheap
    not_measured: a benchmark, not a run record
"""


def test_each_verdict_follows_the_rule_from_the_primary(tmp_path, capsys):
    write_runs(tmp_path / "r")
    assert main(["compare", str(tmp_path / "r"), "--claims", claims_file(tmp_path, LEDGER)]) == 0
    out = capsys.readouterr().out
    rows = {line.split(" | ")[0][2:]: line for line in out.splitlines() if line.startswith("| ") and " | " in line}
    # mix − erm on seeds 0-2: .05 .04 .03, mean .04, SE .01/√3, CI ± 4.303 SE = [+.0152, +.0648] → in points
    assert rows["1"].startswith("| 1 | mixing helps | **supported** | t · epochs 10: mix vs erm, accuracy 82.0 % → "
                                "86.0 % | 3 | +4.0 pt [+1.5, +6.5] | 0.02 |")
    assert "`mixsuite compare " in rows["1"] and "--seeds 0 1 2" in rows["1"]     # seed 3 of mix has no erm
    assert "| 2 | bad helps | **contradicted** | t · epochs 10: bad vs erm, accuracy 82.0 % → 79.0 % | 3 | " \
           "-3.0 pt [-5.5, -0.5] |" in rows["2"]
    # noisy: +.1 −.1 +.05, mean .0167, sd .104: 4.303 · .104/√3 = .26 > .017; n to decide from t(n−1)·sd/√n < .0167
    assert "| 3 | noisy helps | **inconclusive**: not decidable at this scale (needs ~153 seeds) |" in rows["3"]
    assert "| 4 | lone helps | **not measured** | no seed of lone has a paired erm run | 0 |" in rows["4"]
    assert "| 5 | it is cheap | **not measured** | a benchmark, not a run record | 0 | — | — | — |" in rows["5"]
    details = out.split("## Details")[1]
    assert "### 1. mixing helps: supported" in details and "Note: the long runs are pending" in details
    assert "| t · epochs 10: mix − erm | nll (expect lower) | 3 | nll 1.00 → 0.900 |" in details
    assert "- Figure (bench.md): 0.98x the time of a step: `python bench/x.py`" in details

    command = rows["1"].split("`")[1]                 # the row's command prints the row's figures
    argv = shlex.split(command)[2:]
    argv[0] = str(tmp_path / "r")
    assert main(["compare", *argv]) == 0
    printed = capsys.readouterr().out
    assert "0.8200 ± 0.0200" in printed and "0.8600 ± 0.0100" in printed          # the two means of the headline
    assert "| 3 | +0.0400 ± 0.0058 | [+0.0152, +0.0648] | 0.02 |" in printed     # n, Δ, CI, p


def test_decidable_within_sets_where_n_to_decide_becomes_not_decidable(tmp_path, capsys):
    test_each_verdict_follows_the_rule_from_the_primary(tmp_path, capsys)   # writes the records of LEDGER
    for within, text in [(153, "**inconclusive** (n to decide: 153)"), (152, "**inconclusive**: not decidable at "
                                                                              "this scale (needs ~153 seeds)")]:
        body = f"decidable_within: {within}\n" + LEDGER
        assert main(["compare", str(tmp_path / "r"), "--claims", claims_file(tmp_path, body)]) == 0
        row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| 3 | noisy"))
        assert row.startswith(f"| 3 | noisy helps | {text} |")


def test_an_ambiguous_primary_names_the_configs_it_matched(tmp_path, capsys):
    write_runs(tmp_path / "r")
    body = LEDGER.replace("primary: {task: t, where: {epochs: 10}, method: mix", "primary: {task: t, method: mix")
    assert main(["compare", str(tmp_path / "r"), "--claims", claims_file(tmp_path, body)]) == 1
    err = capsys.readouterr().err
    assert "claim 1 primary: mix matches 2 configs with where {}: d mix-h (epochs=10); d mix-long (epochs=20)" in err


def test_a_metric_no_record_has_names_close_ones(tmp_path, capsys):
    write_runs(tmp_path / "r")
    body = LEDGER.replace("baseline: erm, metric: acc, expect: higher}\n    secondary", "baseline: erm, metric: "
                          "accc, expect: higher}\n    secondary")
    assert main(["compare", str(tmp_path / "r"), "--claims", claims_file(tmp_path, body)]) == 1
    assert "claim 1 primary: metric 'accc' is in no t record's metrics; close ones: acc" in capsys.readouterr().err
    body = LEDGER.replace("where: {epochs: 10}, method: bad", "where: {epoch: 10}, method: bad")
    assert main(["compare", str(tmp_path / "r"), "--claims", claims_file(tmp_path, body)]) == 1
    assert "claim 2 primary: where epoch: no record of the task has this config key; close ones: epochs" in \
        capsys.readouterr().err


@pytest.mark.parametrize("claims,message", [
    ({"claims": [{"id": 1, "claim": "x"}]}, "claim 1: give exactly one primary comparison, or not_measured"),
    ({"claims": [{"id": 1, "claim": "x", "primary": {"task": "t", "method": "a", "baseline": "b", "metric": "m",
                                                     "expect": "up"}}]}, "claim 1.primary.expect: 'up'; give higher"),
    ({"claims": [{"id": 1, "claim": "x", "primary": {"task": "t", "method": "a", "baseline": "b", "metrc": "m",
                                                     "expect": "up"}}]}, "unknown key 'metrc' (did you mean 'metric'?)"),
    ({"claims": [{"id": 1, "claim": "x", "not_measured": "y"}, {"id": 1, "claim": "z", "not_measured": "y"}]},
     "claim 1: the id is used twice"),
    ({"claim": []}, "unknown key 'claim' (did you mean 'claims'?)"),
    ({"claims": [{"id": 1, "claim": "x", "not_measured": "y"}], "decidable_within": 2},
     "decidable_within: 2; give the most seeds (an integer >= 3)"),
])
def test_a_bad_claims_file_names_the_claim_and_the_key(claims, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_claims(claims, "c.yaml")


def test_a_bad_claims_file_exits_2_before_any_record_is_read(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nothing-here"), "--claims", claims_file(tmp_path, "claims: 3\n")]) == 2
    assert "`claims:` must be a list of claims" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), "--claims", claims_file(tmp_path, LEDGER), "--metric", "acc"]) == 2
    assert "--metric does not apply to --claims" in capsys.readouterr().err


def test_each_side_can_have_its_own_protocol_and_the_command_keeps_both(tmp_path, capsys):
    """s2m2 ran with an epoch cap of 30, baseline++ with 60 (and a first attempt at 25): method_where /
    baseline_where pick one config each; the command filters on either value and still pairs the right two."""
    for seed in (1, 2, 3):
        write_record(tmp_path / "r", rec("base", seed, {"err": 0.30 + seed / 100}, chash="b060", epochs=60))
        write_record(tmp_path / "r", rec("new", seed, {"err": 0.25 + seed / 100}, chash="n030", epochs=30))
    write_record(tmp_path / "r", rec("base", 1, {"err": 0.9}, chash="b025", epochs=25))
    body = """
    claims:
      - id: 9
        claim: new lowers the error
        primary: {task: t, method_where: {epochs: 30}, baseline_where: {epochs: 60}, method: new, baseline: base,
                  metric: err, expect: lower}
      - id: 10
        claim: pinned by hash
        primary: {task: t, baseline_config: b025, method: new, baseline: base, metric: err, expect: lower}
    """
    assert main(["compare", str(tmp_path / "r"), "--claims", claims_file(tmp_path, body)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| 9 |"))
    assert "**supported** | t: new (epochs 30) vs base (epochs 60), err 0.320 → 0.270 | 3 |" in row  # d = −.05 each
    assert "--where epochs=30,60 --method base --method new --paired base --metric err" in row   # b025 filtered out
    pinned = next(line for line in out.splitlines() if line.startswith("| 10 |"))
    assert "**not measured** | no seed of new has a paired base run" not in pinned   # seed 1 is paired with b025
    assert "| 1 |" in pinned and "--paired b025" in pinned     # --paired base would pick the nearest, b060
