"""pyproject.toml states ranges, constraints.txt the tested set, CI installs every extra with it, and a task whose
extra is missing exits 2 naming the extra."""
import re
import subprocess
import sys
import tomllib

import pytest

from conftest import ROOT
from mixsuite.extras import EXTRA_OF_IMPORT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?(.*)$")


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[normal(name)] = version.strip()
    return pins


def requirements():
    """(name, specifier) of every core and extra requirement but the `all` extra's self-reference."""
    for req in PROJECT["dependencies"] + [r for name, reqs in EXTRAS.items() if name != "all" for r in reqs]:
        name, _, spec = REQUIREMENT.match(req.replace(" ", "")).groups()
        yield normal(name), spec


def test_every_requirement_is_a_range_from_the_tested_version_to_the_next_major():
    pins = constraints()
    for name, spec in requirements():
        assert "==" not in spec, f"{name} is pinned ({spec}); pins belong in constraints.txt"
        lower = re.search(r">=([0-9][0-9.]*)", spec)
        upper = re.search(r"<([0-9]+)$|<([0-9]+),", spec)
        assert lower and upper, f"{name}{spec}: needs >=LOWEST_TESTED,<NEXT_MAJOR"
        assert lower.group(1) == pins[name], f"{name}: lower bound {lower.group(1)}, tested {pins[name]}"
        next_major = int(pins[name].split(".")[0]) + 1
        assert int(upper.group(1) or upper.group(2)) == next_major, f"{name}{spec}: the next major is {next_major}"


def test_pillow_is_declared_in_the_core():
    assert "pillow" in {normal(REQUIREMENT.match(r).group(1)) for r in PROJECT["dependencies"]}


def test_the_extras_table_agrees_with_pyproject():
    for module, (dist, extra) in EXTRA_OF_IMPORT.items():
        names = {normal(REQUIREMENT.match(r).group(1)) for r in EXTRAS[extra]}
        assert normal(dist) in names, f"{module}: mixsuite/extras.py says {dist} is in [{extra}]; pyproject: {names}"


def test_all_holds_every_extra_but_test_and_ci_installs_it_with_the_constraints():
    (everything,) = EXTRAS["all"]
    named = set(re.match(r"mixsuite\[(.*)\]", everything).group(1).split(","))
    assert named == set(EXTRAS) - {"all", "test"}
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r'pip install .*-c constraints\.txt .*-e "\.\[all,test\]"', ci), ci


@pytest.mark.parametrize("blocked,task,extra", [("torch_geometric", "graphmix", "graph"),
                                                ("editdistance", "handwriting", "htr")])
def test_a_task_whose_extra_is_missing_exits_2_naming_it(blocked, task, extra):
    code = (f"import sys; sys.modules[{blocked!r}] = None\n"   # what an import of a package not installed raises
            "from mixsuite.cli import main\n"
            f"raise SystemExit(main(['run', 'tasks/{task}', '--print-config']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert f"mixsuite[{extra}]" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_late_import_of_an_extra_exits_2_too(monkeypatch, capsys):
    from mixsuite import cli

    def run_that_imports_late(args):
        import pytorch_metric_learning  # noqa: F401

    monkeypatch.setitem(sys.modules, "pytorch_metric_learning", None)
    monkeypatch.setattr(cli, "cmd_list", run_that_imports_late)
    assert cli.main(["list"]) == 2
    assert "mixsuite[metric]" in capsys.readouterr().err


@pytest.mark.parametrize("module,package,extra", [("lightning", "lightning", "lightning"),
                                                  ("transformers", "transformers", "hf")])
def test_an_integration_without_its_extra_names_it(module, package, extra, monkeypatch):
    import importlib

    from mixsuite.errors import MissingExtra

    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delitem(sys.modules, f"mixsuite.integrations.{module}", raising=False)
    with pytest.raises(MissingExtra, match=re.escape(f"mixsuite[{extra}]")):
        importlib.import_module(f"mixsuite.integrations.{module}")
