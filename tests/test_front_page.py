"""The front page (`compare RESULTS --across-tasks` with a claims file) and compare's default columns."""
import textwrap

from mixsuite.cli import main
from mixsuite.report import write_record


def rec(method, seed, metrics, chash, task="img", **config):
    return {"task": task, "dataset": "d", "method": method, "seed": seed, "metrics": metrics, "started_at": "",
            "run_id": f"{method}-{chash}-s{seed}", "primary_metric": "test_err", "config_hash": chash,
            "config": {"seed": seed, "method": method, **config}, "status": "finished"}


CLAIMS = """
metrics:
  best_test_err: {label: test error, unit: "%"}
  best_test_acc: {label: test accuracy, short: accuracy, unit: "%", scale: 100}
claims:
  - id: 1
    claim: mixing lowers the error
    primary: {task: img, where: {epochs: 80, lr: 0.1}, method: mix, baseline: erm, metric: best_test_err, expect: lower}
tasks:
  img:
    baseline: erm
    metrics: {best_test_err: lower, best_test_acc: higher}
    protocols: [{where: {epochs: 80}}]
"""


def write_results(root, tmp_path):
    errs = {"erm": [40.0, 42.0, 44.0], "mix": [35.0, 36.5, 38.0]}   # Δ = -5, -5.5, -6: mean -5.5, sd .5
    for method, values in errs.items():
        for seed, err in enumerate(values):
            write_record(root, rec(method, seed, {"best_test_err": err, "best_test_acc": 1 - err / 100,
                                                  "test_err": err + 1, "best_epoch": 9}, f"{method}80hash",
                                   epochs=80, width=0.25, lr=0.1))
    write_record(root, rec("mix", 0, {"best_test_err": 50.0, "best_test_acc": 0.5}, "mixfirst1", epochs=80,
                           width=0.25, lr=0.2))              # a first attempt: one seed, another lr
    write_record(root, rec("erm", 0, {"best_test_err": 45.0, "best_test_acc": 0.55}, "erm40hash", epochs=40,
                           width=0.25, lr=0.1))              # another protocol, off the page
    (root / "claims.yaml").write_text(textwrap.dedent(CLAIMS))
    configs = tmp_path / "configs" / "img"
    configs.mkdir(parents=True)
    (configs / "overfit.yaml").write_text("epochs: 40\nwidth: 0.25\nlr: 0.1\n")
    (configs / "smoke.yaml").write_text("epochs: 1\nwidth: 0.1\nlr: 0.5\n")


def test_the_front_page_names_protocols_in_words_and_keeps_hashes_in_the_appendix(tmp_path, capsys, monkeypatch):
    root = tmp_path / "results"
    write_results(root, tmp_path)
    monkeypatch.chdir(tmp_path)            # configs/ is read from the checkout being worked in
    assert main(["compare", "results", "--across-tasks"]) == 0
    page = capsys.readouterr().out
    claims, tasks = page.split("## Each task's headline protocol")
    # Δ -5.5, SE .5/√3 = .2887, ± 4.303 SE = 1.242: [-6.74, -4.26]; t = -19.05 on 2 df: p = 0.0027
    assert "| 1 | mixing lowers the error | **supported** | img · epochs 80, lr 0.1: mix vs erm, test error 42.0 % → " \
           "36.5 % | 3 | -5.5 pt [-6.7, -4.3] | 0.0027 | [details](claims.md#claim-1) |" in claims
    assert "**overfit · epochs 80** (baseline erm)" in tasks
    assert "| method | test error | accuracy | n | Δ test error (95 % CI) | Δ accuracy (95 % CI) |" in tasks
    assert "| erm | 42.0 % | 58.0 % | 3 | baseline | baseline |" in tasks
    assert "| mix | 36.5 % | 63.5 % | 3 | -5.5 pt [-6.7, -4.3] ▲ | +5.5 pt [+4.3, +6.7] ▲ |" in tasks
    table_rows = [ln for ln in tasks.split("## Appendix")[0].splitlines() if ln.startswith("| ")]
    assert not any("hash" in ln or "mixfirst" in ln for ln in table_rows)      # no hash, no first attempt
    assert "| img | overfit · epochs 80 | mix | mix80hash | 3 |" in tasks.split("## Appendix")[1]
    assert main(["compare", "results", "--across-tasks", "--all", "--show-hash"]) == 0
    every = capsys.readouterr().out
    assert "| mix · lr=0.2 `mixfirst1` | 50.0 % | 50.0 % | 1 | +10.0 pt — | -10.0 pt — |" in every
    assert "| mix · lr=0.1 `mix80hash` | 36.5 % |" in every


def test_compare_shows_the_headline_metrics_by_default_and_a_dash_for_one_seed(tmp_path, capsys):
    root = tmp_path / "results"
    write_results(root, tmp_path)
    assert main(["compare", str(root)]) == 0
    table = capsys.readouterr().out
    assert "| dataset | method | config | n | best_test_err | best_test_acc |" in table   # declared in claims.yaml
    assert "| d | mix | mixfirst1 | 1 | 50.0000 ± — | 0.5000 ± — |" in table
    (root / "claims.yaml").unlink()
    assert main(["compare", str(root)]) == 0   # nothing declared: the primary, then the best_test_* metrics
    assert "| dataset | method | config | n | test_err | best_test_acc | best_test_err |" in capsys.readouterr().out
    assert main(["compare", str(root), "--metric", "all"]) == 0
    assert "| n | test_err | best_epoch | best_test_acc | best_test_err |" in capsys.readouterr().out


def test_values_read_with_three_significant_digits():
    from mixsuite.report.units import sig, value

    assert [sig(0.98), sig(35.14), sig(9.9996), sig(1234.0), sig(0.0955)] == ["0.980", "35.1", "10.0", "1,234", "0.0955"]
    assert value(0.351, "%", 100) == "35.1 %" and value(0.9821) == "0.982"


def test_a_protocol_over_two_datasets_gets_a_table_for_each(tmp_path, capsys, monkeypatch):
    root = tmp_path / "results"
    write_results(root, tmp_path)
    for method, err in (("erm", 10.0), ("mix", 30.0)):   # a second dataset where mixing is worse
        for seed in range(3):
            r = rec(method, seed, {"best_test_err": err + seed, "best_test_acc": 0.5}, f"{method}other", epochs=80,
                    width=0.25, lr=0.1)
            write_record(root, {**r, "dataset": "other", "run_id": f"other-{r['run_id']}"})
    claims = root / "claims.yaml"   # the claim names its dataset now that two are recorded
    claims.write_text(claims.read_text().replace("where: {epochs: 80, lr: 0.1}", "where: {epochs: 80, lr: 0.1, dataset: d}"))
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "results", "--across-tasks"]) == 0
    tasks = capsys.readouterr().out.split("## Each task's headline protocol")[1]
    d, other = tasks.split("**other · ")
    assert "**d · overfit · epochs 80** (baseline erm)" in d
    assert "| mix | 36.5 % |" in d and "| erm | 42.0 % |" in d          # each dataset's own means, never pooled
    assert "| mix | 31.0 % |" in other and "| erm | 11.0 % |" in other
    assert "| mix | 31.0 % | 50.0 % | 3 | +20.0" in other             # against its own dataset's erm
