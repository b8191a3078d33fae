from dataclasses import dataclass, field

import pytest

from mixsuite.config import (ConfigError, RunConfig, added_field, build_config, config_hash, parse_override)


@dataclass
class Optim:
    lr: float = 0.1
    milestones: list[int] = field(default_factory=lambda: [400, 800])


@dataclass
class Cfg(RunConfig):
    alpha: float = 2.0
    layers: list[str] = field(default_factory=lambda: ["input"])
    optim: Optim = field(default_factory=Optim)
    note: str | None = None


def test_layers_later_wins(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("alpha: 1.0\nepochs: 5\noptim:\n  lr: 0.05\n")
    b = tmp_path / "b.yaml"
    b.write_text("alpha: 0.5\n")
    cfg = build_config(Cfg, [a, b], ["epochs=7", "optim.milestones=[1,2]", "layers=[input,layer1]"])
    assert (cfg.alpha, cfg.epochs, cfg.optim.lr, cfg.optim.milestones) == (0.5, 7, 0.05, [1, 2])
    assert cfg.layers == ["input", "layer1"]
    assert build_config(Cfg, [], ["alpha=3"]).alpha == 3.0 and isinstance(build_config(Cfg, [], ["alpha=3"]).alpha, float)


def test_unknown_key_names_key_and_nearest():
    with pytest.raises(ConfigError, match=r"'alpah'.*did you mean 'alpha'"):
        build_config(Cfg, [], ["alpah=1"])
    with pytest.raises(ConfigError, match=r"optim\.lrr.*optim\.lr"):
        build_config(Cfg, [], ["optim.lrr=1"])


def test_type_errors_name_key():
    with pytest.raises(ConfigError, match="epochs: expected an integer"):
        build_config(Cfg, [], ["epochs=abc"])
    with pytest.raises(ConfigError, match="progress: expected true or false"):
        build_config(Cfg, [], ["progress=maybe"])
    with pytest.raises(ConfigError, match="not of the form"):
        parse_override("alpha")
    assert build_config(Cfg, [], ["note=null"]).note is None


def test_hash_ignores_seed_and_device_but_not_alpha():
    base = Cfg()
    assert config_hash(base) == config_hash(build_config(Cfg, [], ["seed=3", "device=cpu"]))
    assert config_hash(base) != config_hash(build_config(Cfg, [], ["alpha=1.0"]))


@dataclass
class CfgLater(Cfg):
    new_switch: bool = added_field(False)


def test_an_added_field_keeps_the_hash_until_it_is_set():
    assert config_hash(CfgLater()) == config_hash(Cfg())
    assert config_hash(build_config(CfgLater, [], ["alpha=1.0"])) == config_hash(build_config(Cfg, [], ["alpha=1.0"]))
    assert config_hash(build_config(CfgLater, [], ["new_switch=true"])) != config_hash(Cfg())
    assert build_config(CfgLater, [], ["new_switch=true"]).new_switch is True


@dataclass
class CfgNewDefault(Cfg):
    """`new_switch` existed as added_field(False); its default then became True, and for alpha <= 1 the value that
    computes as before is whatever the config says (say the switch has no effect there)."""
    new_switch: bool = added_field(True, before=lambda cfg: False if cfg.alpha > 1 else cfg.new_switch)


def test_a_changed_default_gives_a_new_hash_and_the_old_value_keeps_the_old_one():
    old_default = config_hash(CfgLater())
    assert config_hash(CfgNewDefault()) != old_default                        # the new default computes otherwise
    assert config_hash(CfgNewDefault()) == config_hash(build_config(CfgLater, [], ["new_switch=true"]))
    assert config_hash(build_config(CfgNewDefault, [], ["new_switch=false"])) == old_default
    assert from_record(CfgNewDefault, {"alpha": 2.0}).new_switch is False   # a record made before: as then
    assert from_record(CfgNewDefault, {"new_switch": True}).new_switch is True
    # where the field has no effect, the configs keep the hash they had whatever its value
    hashes = {config_hash(build_config(cls, [], ["alpha=0.5"])) for cls in (CfgNewDefault, CfgLater, Cfg)}
    assert len(hashes) == 1


# ---- allowed values, declared once per field ---------------------------------------------------------------------
from typing import Annotated, Literal  # noqa: E402

from mixsuite.config import at_least, each, one_of, positive, probability, validate  # noqa: E402

KINDS = ("small", "large")


@dataclass
class Ruled(RunConfig):
    kind: Annotated[str, one_of(KINDS, prefixes={"custom:": lambda rest: None if rest else "custom: needs a name"})] \
        = "small"
    share: Annotated[float, probability] = 0.5
    size: Annotated[int, positive] = 3
    widths: Annotated[list[int], each(at_least(1))] = field(default_factory=lambda: [1, 2])
    mode: Literal["a", "b"] = "a"
    optim: Optim = field(default_factory=Optim)


@dataclass
class RuledLonger(Ruled):
    epochs: int = 100          # only the default changes: RunConfig's `>= 1` still holds
    size: int = 5


def test_a_closed_set_names_the_field_the_value_and_the_nearest_spelling():
    with pytest.raises(ConfigError,
                       match=r"^kind: 'smal' is not one of small, large, custom:<name>; did you mean 'small'\?$"):
        build_config(Ruled, [], ["kind=smal"])
    with pytest.raises(ConfigError, match=r"kind: 'zzz' .*; the nearest is '(small|large)'$"):
        build_config(Ruled, [], ["kind=zzz"])
    assert build_config(Ruled, [], ["kind=custom:mine"]).kind == "custom:mine"
    with pytest.raises(ConfigError, match="kind: custom: needs a name"):
        build_config(Ruled, [], ["kind='custom:'"])
    with pytest.raises(ConfigError, match=r"mode: 'c' is not one of a, b"):
        build_config(Ruled, [], ["mode=c"])


def test_ranges_and_items():
    with pytest.raises(ConfigError, match=r"^share: 1.5 is out of range: it must be in \[0, 1\]$"):
        build_config(Ruled, [], ["share=1.5"])
    with pytest.raises(ConfigError, match=r"^size: 0 is out of range: it must be > 0$"):
        build_config(Ruled, [], ["size=0"])
    with pytest.raises(ConfigError, match=r"^widths: item 1: 0 is out of range: it must be >= 1$"):
        build_config(Ruled, [], ["widths=[3,0]"])
    with pytest.raises(ConfigError, match=r"^epochs: 0 is out of range"):
        build_config(Ruled, [], ["epochs=0"])
    assert build_config(Ruled, [], ["share=0", "share=1"]).share == 1.0


def test_every_problem_is_listed_and_defaults_are_checked_too():
    with pytest.raises(ConfigError) as err:
        build_config(Ruled, [], ["share=2", "size=-1", "kind=big"])
    assert str(err.value).startswith("3 problems:") and all(k in str(err.value) for k in ("share:", "size:", "kind:"))
    with pytest.raises(ConfigError, match="share: 7.0"):
        validate(Ruled(share=7.0))     # a config built in code: runner.run checks it the same way


def test_a_subclass_that_changes_a_default_keeps_the_rules():
    assert build_config(RuledLonger).epochs == 100
    with pytest.raises(ConfigError, match=r"^epochs: 0 is out of range"):
        build_config(RuledLonger, [], ["epochs=0"])
    with pytest.raises(ConfigError, match=r"^size: 0 is out of range"):
        build_config(RuledLonger, [], ["size=0"])


@dataclass
class CfgLaterList(Cfg):
    extra_layers: list[str] = added_field(["x"])


def test_an_added_list_field_keeps_the_hash_until_it_is_set():
    a, b = CfgLaterList(), CfgLaterList()
    assert a.extra_layers == ["x"] and a.extra_layers is not b.extra_layers
    assert config_hash(a) == config_hash(Cfg())
    assert config_hash(build_config(CfgLaterList, [], ["extra_layers=[y]"])) != config_hash(Cfg())


# ---- every committed config is valid and keeps its hash ----------------------------------------------------------
import json  # noqa: E402

from mixsuite.config import from_record, load_yaml  # noqa: E402
from mixsuite.task import resolve  # noqa: E402

from conftest import ROOT  # noqa: E402

TASKS = ("spirals", "image", "fewshot", "graphmix", "handwriting")
# One record of each config that the tables group by (paths under results/), made before the shared mixing config
# and the value rules.
PINNED = [
    "runs/spirals/spirals-erm-ee622189f6-s0.json", "runs/spirals/spirals-input-1d3e9c60bf-s0.json",
    "runs/spirals/spirals-manifold-7bac51a605-s0.json",
    "image-12epoch/runs/image/cifar10-jpeg-cutmix-96969fe5a5-s0.json",
    "image-12epoch/runs/image/cifar10-jpeg-manifold-953a1f3379-s0.json",
    "image-12epoch/runs/image/cifar10-jpeg-erm-3513bf1f64-s0.json",
    "image-12epoch/runs/image/cifar10-jpeg-input-f89673f510-s0.json",
    "runs/fewshot/omniglot-s2m2-2ac8e7e4f7-s0.json", "runs/fewshot/omniglot-manifold-7928b4afca-s0.json",
    "runs/fewshot/omniglot-baselinepp-8fd32314be-s0.json",
    "runs/graphmix/cora-gcn-258a48eccf-s1.json", "runs/graphmix/cora-graphmix-374f718e65-s1.json",
    "runs/graphmix/citeseer-graphmix-88b3be46f0-s1.json", "runs/graphmix/citeseer-graphmix-0a387b4a62-s1.json",
    "runs/handwriting/poilus-manifold-042a4d99ea-s1.json", "runs/handwriting/poilus-manifold-4ef60f52a3-s1.json",
    "runs/handwriting/poilus-erm-da2d17bf90-s1.json",
]


@pytest.mark.parametrize("name", PINNED)
def test_recorded_configs_keep_their_hash(name):
    record = json.loads((ROOT / "results" / name).read_text())
    task = resolve(str(ROOT / "tasks" / record["task"])).load()
    cfg = validate(from_record(task.Config, record["config"]))
    assert config_hash(cfg) == record["config_hash"]
    assert name.rsplit("/", 1)[1].startswith(f"{record['dataset']}-{record['method']}-{record['config_hash']}")


@pytest.mark.parametrize("task_name", TASKS)
def test_every_committed_config_file_is_valid(task_name):
    task = resolve(str(ROOT / "tasks" / task_name)).load()
    for path in sorted((ROOT / "configs" / task_name).glob("*.yaml")):
        assert isinstance(load_yaml(path), dict)
        build_config(task.Config, [path])       # raises ConfigError naming the field if a file breaks a rule
