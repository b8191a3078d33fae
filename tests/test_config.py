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
