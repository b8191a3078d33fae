"""mixsuite as an installed library: the built-in tasks and their named configs in the wheel, found by name from
any folder; `-c NAME` among a task's configs; records name a commit only where mixsuite runs from a checkout."""
import json
import subprocess
import sys
import zipfile

import pytest

from mixsuite.errors import ConfigError
from mixsuite.report.records import git_info
from mixsuite.cli import main
from mixsuite.task import discover, resolve

from conftest import ROOT, record_files
from test_cli_and_plugins import installed_entry_point, make_tiny


def test_a_named_config_is_found_among_the_tasks_own():
    spec = resolve(str(ROOT / "tasks" / "fewshot"))
    assert spec.config_file("smoke") == str(ROOT / "configs" / "fewshot" / "smoke.yaml")
    assert spec.config_file("smoke.yaml") == spec.config_file("smoke")
    assert spec.config_file("configs/fewshot/smoke.yaml") == "configs/fewshot/smoke.yaml"  # a path stays a path
    assert {"smoke", "cpu-omniglot", "paper-cub"} <= set(spec.named_configs())
    with pytest.raises(ConfigError, match="neither a file nor a named config of task 'fewshot'; did you mean 'smoke'"):
        spec.config_file("smoek")


def installed_layout(site, monkeypatch, name="tiny"):
    """site-packages as the wheel lays it out: mixsuite_tasks/<name>/ and mixsuite_configs/<name>/*.yaml."""
    make_tiny(site / "mixsuite_tasks", name)
    (site / "mixsuite_configs" / name).mkdir(parents=True)
    (site / "mixsuite_configs" / name / "quick.yaml").write_text("epochs: 1\nvalue: 0.75\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("MIXSUITE_TASK_PATHS", "")
    for var in ("MIXSUITE_RESULTS", "MIXSUITE_RUNS"):
        monkeypatch.delenv(var, raising=False)


def test_installed_builtins_are_listed_and_run_by_name_from_any_folder(tmp_path, monkeypatch, capsys):
    installed_layout(tmp_path / "site", monkeypatch)
    work = tmp_path / "anywhere"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    line = next(ln for ln in listed.splitlines() if ln.startswith("tiny "))
    assert "mixsuite_tasks" in line and "spirals" in listed
    assert main(["run", "tiny", "-c", "quick"]) == 0
    records = record_files(work)  # results and runs in the current folder, nothing in the package
    assert len(records) == 1 and (work / "runs" / "tiny").is_dir()
    assert json.loads(records[0].read_text())["metrics"]["score"] == 0.75
    assert not [p for p in (tmp_path / "site").rglob("*") if p.suffix in (".json", ".jsonl", ".pt", ".yaml")
                and p.name != "quick.yaml"]
    capsys.readouterr()
    assert main(["run", "tiny", "-c", "quik"]) == 2
    assert "did you mean 'quick'" in capsys.readouterr().err


def test_a_task_folder_of_the_same_name_comes_before_the_installed_one(tmp_path, monkeypatch):
    installed_layout(tmp_path / "site", monkeypatch)
    make_tiny(tmp_path / "tasks", "tiny")  # ./tasks/tiny, as in a checkout
    monkeypatch.chdir(tmp_path)
    found = discover()["tiny"]
    assert found.folder == (tmp_path / "tasks" / "tiny").resolve()


def test_an_entry_point_task_finds_the_configs_of_its_package(tmp_path, monkeypatch, capsys):
    installed_entry_point(tmp_path / "site", "ep_pkg", "eptask")
    (tmp_path / "site" / "ep_pkg" / "configs").mkdir()
    (tmp_path / "site" / "ep_pkg" / "configs" / "quick.yaml").write_text("value: 0.5\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.chdir(tmp_path)
    assert main(["run", "eptask", "-c", "quick", "--print-config"]) == 0
    assert "value: 0.5" in capsys.readouterr().out


def test_git_sha_only_for_a_checkout_of_mixsuite_itself(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    site = tmp_path / ".venv" / "lib" / "site-packages"  # an installed mixsuite inside some repository
    site.mkdir(parents=True)
    assert git_info(site) == ("unknown", False)
    sha, _ = git_info(ROOT)
    assert len(sha) == 40 and git_info()[0] == sha  # by default: the checkout mixsuite is imported from


def test_the_wheel_holds_every_task_and_config(tmp_path):
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "pyproject.toml", "setup.py", "README.md", "mixsuite", "tasks",
                            "configs"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        (src / f).write_bytes((ROOT / f).read_bytes())
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("mixsuite-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in files:
        if f.startswith("tasks/") and "/" in f[6:]:
            assert "mixsuite_tasks/" + f[6:] in names, f
        elif f.startswith("configs/"):
            assert "mixsuite_configs/" + f[8:] in names, f
        elif f.startswith("mixsuite/") and f.endswith(".py"):
            assert f in names, f
    from mixsuite import __version__

    assert wheel.name.startswith(f"mixsuite-{__version__}-")
