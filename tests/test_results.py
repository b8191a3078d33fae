import json
import subprocess

import pytest
import torch

from mixsuite.cli import main
from mixsuite.report.plots import plot_rows
from mixsuite.report.records import git_info, load_records, write_record
from mixsuite.report.tables import format_table, row_labels, summarize


def rec(method, seed, acc, chash="h1", status="finished"):
    return {"task": "t", "dataset": "d", "method": method, "seed": seed, "run_id": f"{method}-{seed}-{chash}",
            "metrics": {"test_acc": acc, "epoch": 3}, "primary_metric": "test_acc", "config": {},
            "config_hash": chash, "status": status}


def test_summarize_mean_std_and_groups(tmp_path):
    for r in [rec("erm", 0, 0.8), rec("erm", 1, 0.9), rec("erm", 2, 1.0), rec("mix", 0, 0.5),
              rec("mix", 0, 0.7, chash="h2"), rec("erm", 9, 0.0, status="diverged")]:
        write_record(tmp_path, r)
    recs = load_records(tmp_path)
    assert len(recs) == 5  # the diverged run is left out
    rows = {(r["method"], r["config_hash"]): r for r in summarize(recs)}
    mean, std, n = rows[("erm", "h1")]["stats"]["test_acc"]
    assert (round(mean, 10), round(std, 10), n) == (0.9, 0.1, 3)
    assert rows[("mix", "h2")]["n"] == 1
    assert sorted(rows[("erm", "h1")]["values"]["test_acc"]) == [0.8, 0.9, 1.0]
    labels = row_labels(summarize(recs))  # mix has two configs, so its columns name them; erm has one
    assert labels == ["d\nerm", "d\nmix\nh1", "d\nmix\nh2"]
    png = plot_rows(summarize(recs), "test_acc", tmp_path / "acc.png")
    assert png.stat().st_size > 1000
    table = format_table(summarize(recs), "md")
    assert "| d | erm | h1 | 3 | 0.9000 ± 0.1000 |" in table
    assert "epoch" not in table.splitlines()[2]
    csv = format_table(summarize(recs), "csv").splitlines()
    assert csv[0].startswith("task,dataset,method,config_hash,n") and len(csv) == 4


def test_compare_reads_several_folders_and_picks_seeds(tmp_path, capsys):
    for r in [rec("erm", 1, 0.8), rec("erm", 2, 0.9), rec("erm", 4, 0.2), rec("mix", 1, 0.5)]:
        write_record(tmp_path / "a", r)
    write_record(tmp_path / "b", rec("erm", 3, 1.0))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--seeds", "1", "2", "3", "--method", "erm"]) == 0
    out = capsys.readouterr().out  # seed 4 and method mix left out, seed 3 read from b
    assert "| d | erm | h1 | 3 | 0.9000 ± 0.1000 |" in out and "mix" not in out
    assert main(["compare", str(tmp_path / "a"), "--seeds", "7"]) == 1
    assert "no finished run records with seeds 7 under" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "a"), "--method", "gat", "--seeds", "1"]) == 1
    err = capsys.readouterr().err  # the filters named, and what the folder does hold
    assert "no finished run records with methods gat and seeds 1 under" in err
    assert err.rstrip().endswith("the records there are of: t (erm, mix)")
    assert main(["compare", str(tmp_path / "a"), "--task", "image"]) == 1
    assert "with task image under" in capsys.readouterr().err


def test_compare_where_keeps_the_runs_whose_config_holds_the_value(tmp_path, capsys):
    for seed, epochs, acc in [(1, 4, 0.5), (2, 4, 0.6), (1, 40, 0.8), (2, 40, 0.9)]:
        r = rec("erm", seed, acc, chash=f"e{epochs}")
        r["config"] = {"epochs": epochs, "lake_runs": epochs == 40, "model": {"depth": 18}}
        write_record(tmp_path, r)
    assert main(["compare", str(tmp_path), "--where", "epochs=40"]) == 0
    out = capsys.readouterr().out
    assert "| d | erm | e40 | 2 | 0.8500 ± 0.0707 |" in out and "e4 " not in out
    assert main(["compare", str(tmp_path), "--where", "lake_runs=false", "--where", "model.depth=18"]) == 0
    out = capsys.readouterr().out
    assert "| d | erm | e4 | 2 | 0.5500 ± 0.0707 |" in out and "e40" not in out
    assert main(["compare", str(tmp_path), "--where", "epochs=4,40", "--where", "model.depth=18,34"]) == 0
    out = capsys.readouterr().out                                                 # any of the values
    assert "| d | erm | e4 | 2 |" in out and "| d | erm | e40 | 2 |" in out
    assert main(["compare", str(tmp_path), "--where", "epochs=7"]) == 1
    assert "no finished run records with epochs=7 under" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), "--where", "epoch=40"]) == 2      # a typo names the keys there are
    assert "no record's config has the key 'epoch'; keys there include epochs, lake_runs, model.depth" in \
        capsys.readouterr().err
    assert main(["compare", str(tmp_path), "--where", "epochs"]) == 2
    assert "--where 'epochs': give KEY=VALUE" in capsys.readouterr().err


def test_compare_paired_against_a_baseline_on_shared_seeds(tmp_path, capsys):
    for r in [rec("erm", 1, 0.8), rec("erm", 2, 0.9), rec("erm", 3, 1.0),
              rec("mix", 1, 0.85), rec("mix", 2, 0.9), rec("mix", 3, 1.1), rec("mix", 4, 0.0)]:
        write_record(tmp_path / "a", r)
    assert main(["compare", str(tmp_path / "a"), "--paired", "erm"]) == 0
    out = capsys.readouterr().out  # d = +0.05, 0, +0.1 on seeds 1-3 (seed 4 has no baseline): se = 0.05 / sqrt(3),
    # CI ± t(0.975, 2) = 4.3027 SE, t = sqrt(3), p 0.23; 7 seeds: t(0.975, 6) / sqrt(7) = 0.925 < mean / sd = 1
    assert "| t | d | mix | h1 | erm h1 | 3 | +0.0500 ± 0.0289 | [-0.0742, +0.1742] | 0.23 | 7 | 2 / 1 / 0 |" in out
    assert main(["compare", str(tmp_path / "a"), "--paired", "erm", "--metric", "epoch", "--metric", "test_acc"]) == 0
    tables = capsys.readouterr().out.split("### ")  # one paired table a metric, in the order asked
    assert tables[-2].startswith("epoch: paired against erm") and "| +0.0000 ± 0.0000 | [+0.0000, +0.0000] | 1.00 | — | 0 / 3 / 0 |" in tables[-2]
    assert tables[-1].startswith("test_acc: paired against erm") and "| +0.0500 ± 0.0289 |" in tables[-1]
    from mixsuite.report.paired import paired_difference
    line = paired_difference({1: 0.85, 2: 0.9, 3: 1.1, 4: 0.0}, {1: 0.8, 2: 0.9, 3: 1.0})   # the dots drawn
    assert line["seeds"] == [1, 2, 3] and line["diffs"] == pytest.approx([0.05, 0.0, 0.1])
    png = tmp_path / "paired.png"
    assert main(["compare", str(tmp_path / "a"), "--paired", "erm", "--metric", "test_acc", "--paired-plot", str(png)]) == 0
    assert f"paired plot: {png}" in capsys.readouterr().err and png.stat().st_size > 1000
    assert main(["compare", str(tmp_path / "a"), "--paired-plot", str(png)]) == 2   # nothing paired to draw
    assert "give --paired BASELINE" in capsys.readouterr().err
    write_record(tmp_path / "b", rec("mix", 3, 1.1))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--paired", "erm"]) == 1
    assert "seed 3 of t/d/mix/h1 is there twice" in capsys.readouterr().err
    write_record(tmp_path / "a", rec("erm", 1, 0.7, chash="h2"))
    assert main(["compare", str(tmp_path / "a"), "--paired", "erm"]) == 0    # two erm configs: the one sharing
    assert "| t | d | mix | h1 | erm h1 | 3 |" in capsys.readouterr().out    # the most seeds with mix is its baseline
    assert main(["compare", str(tmp_path / "a"), "--paired", "gat"]) == 1
    assert "--paired gat: no runs of a method or config hash 'gat' with the metric 'test_acc'" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "a"), "--paired", "erm", "--format", "csv"]) == 1
    assert "--paired adds a markdown table" in capsys.readouterr().err


def test_paired_takes_the_nearest_of_several_baseline_configs(tmp_path, capsys):
    """erm run with two losses: each manifold config is paired with its own loss's erm, not with the other."""
    def run(method, loss, seed, acc):
        chash = f"{method}-{loss}"
        return {**rec(method, seed, acc, chash), "config": {"seed": seed, "method": method, "loss": loss, "lr": 0.1}}

    for seed in (1, 2):
        for r in [run("erm", "margin", seed, 0.60), run("erm", "softmax", seed, 0.80),
                  run("manifold", "margin", seed, 0.50 + seed / 100), run("manifold", "softmax", seed, 0.90)]:
            write_record(tmp_path, r)
    assert main(["compare", str(tmp_path), "--paired", "erm"]) == 0
    out = capsys.readouterr().out
    assert "| t | d | manifold | manifold-margin | erm erm-margin | 2 | -0.0850 ± 0.0050 |" in out
    assert "| t | d | manifold | manifold-softmax | erm erm-softmax | 2 | +0.1000 ± 0.0000 |" in out
    assert "| t | d | erm |" not in out          # the baselines are not paired with each other


def test_compare_says_what_sets_configs_apart(tmp_path, capsys):
    def configured(method, seed, chash, **config):
        return {**rec(method, seed, 0.5, chash), "config": {"seed": seed, "device": "cpu", **config}}

    for r in [configured("mix", 1, "h1", gamma=10.0, model={"depth": 18, "bias": False}),
              configured("mix", 2, "h1", gamma=10.0, model={"depth": 18, "bias": False}, ema=False),  # a later run
              configured("mix", 1, "h2", gamma=3.0, model={"depth": 18, "bias": True}, ema=True),
              configured("mix", 1, "h3", gamma=10.0, model={"depth": 34, "bias": False}),
              configured("erm", 1, "h4", gamma=1.0)]:
        write_record(tmp_path, r)
    assert main(["compare", str(tmp_path)]) == 0
    out = capsys.readouterr().out.split("Configs of one dataset and method differ in")
    assert len(out) == 2 and "| d | erm |" not in out[1]  # erm has one config: nothing to set apart
    legend = out[1].splitlines()  # seed and device differ too, but they are not part of what a config computes
    assert "| d | mix | h1 | ema=false, gamma=10.0, model.bias=false, model.depth=18 |" in legend  # the union
    assert "| d | mix | h2 | ema=true, gamma=3.0, model.bias=true, model.depth=18 |" in legend
    assert "| d | mix | h3 | gamma=10.0, model.bias=false, model.depth=34; lacks ema |" in legend
    assert main(["compare", str(tmp_path), "--method", "erm"]) == 0
    assert "differ in" not in capsys.readouterr().out


def test_record_is_atomic_json(tmp_path):
    path = write_record(tmp_path, rec("erm", 0, 0.5))
    assert json.loads(path.read_text())["metrics"]["test_acc"] == 0.5
    assert not list(path.parent.glob("*.tmp"))
    with pytest.raises(ValueError, match="lacks"):
        write_record(tmp_path, {"task": "t"})


def test_curves_average_seeds_per_epoch_and_plot(tmp_path):
    from mixsuite.cli import main
    from mixsuite.report.curves import group_curves

    lines = {0: [(1, 0.9), (2, 0.5), (2, 0.6)],   # a resumed run logged epoch 2 twice: the later line counts
             1: [(1, 0.7), (2, 0.4)]}
    for seed, points in lines.items():
        run_dir = tmp_path / "runs" / f"erm-{seed}"
        run_dir.mkdir(parents=True)
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "val_cer": v}) + "\n" for e, v in points))
        write_record(tmp_path / "results", {**rec("erm", seed, 0.5), "run_dir": str(run_dir)})
    (curve,) = group_curves(load_records(tmp_path / "results"), "val_cer")
    assert curve["epochs"] == [1, 2] and curve["n"] == 2
    assert curve["mean"] == pytest.approx([0.8, 0.5]) and curve["std"] == pytest.approx([0.02 ** 0.5, 0.02 ** 0.5])
    png = tmp_path / "curves.png"
    assert main(["compare", str(tmp_path / "results"), "--curves", "val_cer", str(png)]) == 0
    assert png.stat().st_size > 1000
    assert main(["compare", str(tmp_path / "results"), "--curves", "nope", str(png)]) == 1
    assert main(["compare", str(tmp_path / "results"), "--curves", "val_cer,nope", str(png)]) == 1   # names it


def test_curves_and_spectra_come_from_the_files_kept_beside_a_record_once_the_run_folder_is_gone(tmp_path, capsys):
    import shutil

    from mixsuite.report.curves import group_curves
    from mixsuite.report.records import MAX_KEPT_EPOCHS, keep_run_files, kept_files_dir
    from mixsuite.report.spectra import read_spectra

    run_dir = tmp_path / "runs" / "erm-1"
    run_dir.mkdir(parents=True)
    epochs = 2 * MAX_KEPT_EPOCHS + 51          # 251 lines: every 3rd kept, and the last
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "loss": 1.0 / e}) + "\n"
                                                   for e in range(1, epochs + 1)))
    (run_dir / "spectra.json").write_text(json.dumps({"per_class": {"0": [2.0, 1.0]}}))
    path = write_record(tmp_path / "results", {**rec("erm", 1, 0.5), "run_dir": str(run_dir)})
    kept = keep_run_files(path, run_dir)
    assert [p.name for p in kept] == ["metrics.jsonl", "spectra.json"] and kept[0].parent == kept_files_dir(path)
    shutil.rmtree(run_dir)
    records = load_records(tmp_path / "results", skipped=(skipped := []))
    assert len(records) == 1 and skipped == []    # the kept spectra.json is not taken for a record
    (curve,) = group_curves(records, "loss")
    assert curve["epochs"] == list(range(1, epochs + 1, 3)) + [epochs] and len(curve["epochs"]) <= MAX_KEPT_EPOCHS
    assert curve["mean"][-1] == pytest.approx(1.0 / epochs)
    assert read_spectra(records[0]) == {"per_class": {"0": [2.0, 1.0]}}


def test_curves_draw_several_metrics_one_panel_each(tmp_path, capsys):
    from mixsuite.cli import main

    run_dir = tmp_path / "runs" / "erm-0"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "loss": 1 / e, "val_err": 50 - e}) + "\n"
                                                   for e in (1, 2, 3)))
    write_record(tmp_path / "results", {**rec("erm", 0, 0.5), "run_dir": str(run_dir)})
    png = tmp_path / "curves.png"
    assert main(["compare", str(tmp_path / "results"), "--curves", "loss,val_err", str(png)]) == 0
    assert png.stat().st_size > 1000
    assert main(["compare", str(tmp_path / "results"), "--curves", "loss,val_nll", str(png)]) == 1
    err = capsys.readouterr().err
    assert "'val_nll'" in err and "'loss'" not in err


def test_spectra_average_the_normalised_class_spectra_over_seeds_and_plot(tmp_path, capsys):
    from mixsuite.cli import main
    from mixsuite.report.spectra import group_spectra

    values = {("erm", 0): [3.0, 1.0], ("erm", 1): [1.0, 1.0], ("manifold", 0): [9.0, 1.0]}
    for (method, seed), sv in values.items():
        run_dir = tmp_path / "runs" / f"{method}-{seed}"
        run_dir.mkdir(parents=True)
        (run_dir / "spectra.json").write_text(json.dumps({"overall": sv, "per_class": {"0": sv, "1": sv[::-1]}}))
        write_record(tmp_path / "results", {**rec(method, seed, 0.5), "run_dir": str(run_dir)})
    spectra = group_spectra(load_records(tmp_path / "results"))
    (erm,) = [v for k, v in spectra.items() if " erm " in k]
    (mm,) = [v for k, v in spectra.items() if " manifold " in k]
    assert erm["per_class"]["0"] == pytest.approx([(0.75 + 0.5) / 2, (0.25 + 0.5) / 2])
    assert mm["per_class"]["1"] == pytest.approx([0.1, 0.9])
    png = tmp_path / "spectra.png"
    assert main(["compare", str(tmp_path / "results"), "--spectra", str(png)]) == 0
    assert png.stat().st_size > 1000
    for f in (tmp_path / "runs").rglob("spectra.json"):
        f.unlink()
    assert main(["compare", str(tmp_path / "results"), "--spectra", str(png)]) == 1
    assert "spectra.json" in capsys.readouterr().err


def test_spectra_leave_out_the_rounding_errors_of_classes_with_fewer_points_than_dimensions():
    from mixsuite.analysis import singular_values
    from mixsuite.report.spectra import numerical_rank

    features = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))   # 5 points, 16 dims: rank 4
    sv = singular_values(features, torch.zeros(5, dtype=torch.long))["per_class"][0]
    assert len(sv) == 5 and sv[-1] < 1e-12 * sv[0]
    kept = numerical_rank(sv)
    assert len(kept) == 4 and torch.equal(kept, sv[:4])


def test_git_info_is_the_code_the_process_started_with(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    (tmp_path / "f").write_text("1")
    git("add", "f")
    git("commit", "-qm", "one")
    first = git_info(tmp_path)
    (tmp_path / "f").write_text("2")
    git("commit", "-qam", "two")   # the checkout moves on while a multi-seed command runs
    assert len(first[0]) == 40 and first[1] is False
    assert git_info(tmp_path) == first


def test_compare_names_the_records_it_skips_and_why(tmp_path, capsys):
    for r in [rec("erm", 1, 0.8), rec("erm", 2, 0.9)]:
        write_record(tmp_path, r)
    bad = write_record(tmp_path, {**rec("erm", 3, 0.1), "metrics": None})   # an AttributeError before
    cut = write_record(tmp_path, rec("erm", 4, 0.2))
    cut.write_text(cut.read_text()[:40])                                     # a truncated record
    assert main(["compare", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "| d | erm | h1 | 2 | 0.8500 ± 0.0707 |" in captured.out         # the two good records, n = 2
    assert "skipped 2 files that are not a usable run record:" in captured.err
    assert f"{bad}: has no metrics (\"metrics\": null)" in captured.err
    assert f"{cut}: is not valid JSON (truncated?)" in captured.err


def test_compare_unknown_metric_names_the_metrics_there_are(tmp_path, capsys):
    write_record(tmp_path, rec("erm", 1, 0.8))
    for extra in ([], ["--plot", str(tmp_path / "x.png")]):
        assert main(["compare", str(tmp_path), "--metric", "test_acc", "--metric", "nosuch", *extra]) == 2
        err = capsys.readouterr().err
        assert "--metric nosuch: no run record read has it; the metrics there are: epoch, test_acc" in err
    assert not (tmp_path / "x.png").exists()


def test_curve_stats_give_each_seeds_best_its_epoch_the_last_and_the_first_epoch_reaching_a_value(tmp_path, capsys):
    from mixsuite.cli import main
    from mixsuite.report.curve_stats import curve_stats

    curves = {0: {"val_nll": [1.5, 1.2, 1.2, 1.9], "train_acc": [0.5, 0.99, 1.0, 1.0]},   # a tie: the first epoch
              1: {"val_nll": [1.4, 1.3, 1.1, 1.6], "train_acc": [0.4, 0.8, 0.9, 0.95]}}   # never reaches 0.99
    for seed, logged in curves.items():
        run_dir = tmp_path / "runs" / f"erm-{seed}"
        run_dir.mkdir(parents=True)
        (run_dir / "metrics.jsonl").write_text("".join(
            json.dumps({"epoch": e + 1, **{m: v[e] for m, v in logged.items()}}) + "\n" for e in range(4)))
        write_record(tmp_path / "results", {**rec("erm", seed, 0.5), "run_dir": str(run_dir)})
    rows = curve_stats(load_records(tmp_path / "results"), ["val_nll", "train_acc"], {"train_acc": 0.99})
    nll, acc = rows
    assert nll["mode"] == "min" and acc["mode"] == "max"
    assert nll["seeds"][0] == {"best": 1.2, "best_epoch": 2, "last": 1.9, "last_epoch": 4}
    assert nll["seeds"][1] == {"best": 1.1, "best_epoch": 3, "last": 1.6, "last_epoch": 4}
    assert acc["seeds"][0] == {"best": 1.0, "best_epoch": 3, "last": 1.0, "last_epoch": 4, "reach_epoch": 2}
    assert acc["seeds"][1]["reach_epoch"] is None and acc["seeds"][1]["best"] == 0.95
    assert main(["compare", str(tmp_path / "results"), "--curve-stats", "val_nll,train_acc",
                 "--reach", "train_acc=0.99", "--digits", "2"]) == 0
    out = capsys.readouterr().out
    assert "| d | erm | h1 | val_nll (lower is better) | 2 | 1.10–1.20 | 2–3 | 1.60–1.90 | 4 |  |" in out
    assert "| d | erm | h1 | train_acc (higher is better) | 2 | 0.95–1.00 | 3–4 | 0.95–1.00 | 4 | ≥ 0.99: 2 (1 of 2 seeds) |" in out


def test_curve_stats_leave_out_epochs_whose_value_is_not_a_number(tmp_path):
    from mixsuite.report.curve_stats import curve_stats

    run_dir = tmp_path / "runs" / "erm-0"
    run_dir.mkdir(parents=True)   # a diverged epoch logs NaN (json.dumps writes it), which must not count as best
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "val_nll": v}) + "\n"
                                                   for e, v in [(1, float("nan")), (2, 2.0), (3, 1.5), (4, 1.7)]))
    write_record(tmp_path / "results", {**rec("erm", 0, 0.5), "run_dir": str(run_dir)})
    (row,) = curve_stats(load_records(tmp_path / "results"), ["val_nll"])
    assert row["seeds"][0] == {"best": 1.5, "best_epoch": 3, "last": 1.7, "last_epoch": 4}


def test_curve_stats_name_what_is_wrong_with_their_options(tmp_path, capsys):
    from mixsuite.cli import main

    run_dir = tmp_path / "runs" / "erm-0"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "loss": 1.0}) + "\n")
    write_record(tmp_path / "results", {**rec("erm", 0, 0.5), "run_dir": str(run_dir)})
    results = str(tmp_path / "results")
    assert main(["compare", results, "--curve-stats", "loss,val_nll"]) == 1
    assert "'val_nll'" in capsys.readouterr().err
    assert main(["compare", results, "--reach", "loss=0.1"]) == 2
    assert "give --curve-stats" in capsys.readouterr().err
    assert main(["compare", results, "--curve-stats", "loss", "--reach", "loss"]) == 2
    assert "--reach 'loss': give METRIC=VALUE" in capsys.readouterr().err
    assert main(["compare", results, "--curve-stats", "loss", "--reach", "val_err=30"]) == 2
    out, err = capsys.readouterr()
    assert "--reach val_err: add it to --curve-stats" in err and out == ""   # refused before any table is printed
    assert main(["compare", results, "--curve-stats", "loss", "--format", "csv"]) == 1
    assert "--curve-stats adds a markdown table" in capsys.readouterr().err
