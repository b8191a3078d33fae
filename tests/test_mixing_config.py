"""The shared mixing config: one factory for every mixing task; mix_prob and mix_off_epoch draw from the mixer's
seeded generator, resume exactly, and leave old configs drawing as before; alpha = 0 is recorded as no mixing."""
from dataclasses import dataclass, field, replace
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from mixsuite import runner
from mixsuite.config import ConfigError, RunConfig, build_config, config_hash
from mixsuite.mixing import ERM, GatedMixer, ManifoldMixup, MixingConfig, mixer_from_config
from mixsuite.task import resolve

from conftest import ROOT, killed_then_resumed

SPIRALS = resolve(str(ROOT / "tasks" / "spirals")).load()
SHORT = ["epochs=4", "repeats=4", "n_test_per_class=100", "plots=false", "progress=false"]


@dataclass
class Cfg(MixingConfig, RunConfig):
    method: str = "manifold"
    mix_layers: list[str] = field(default_factory=lambda: ["input", "0"])


class Clock:
    """What the factory reads from the engine: named generators, the epoch and the optimizer step count."""

    def __init__(self, seed=0):
        self.epoch, self.step_count, self.seed = 1, 0, seed
        self.generators = {}

    def generator(self, name):
        return self.generators.setdefault(name, torch.Generator().manual_seed(self.seed))


def net():
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def mixed_steps(mixer, clock, steps, epoch=1):
    """Which of `steps` optimizer steps mix."""
    out = []
    for _ in range(steps):
        clock.epoch = epoch
        with mixer.step(8) as plan:
            out.append(plan.active)
        clock.step_count += 1
    return out


def test_defaults_build_the_same_mixer_drawing_the_same_plans_as_before():
    clock = Clock()
    mixer = mixer_from_config(build_config(Cfg), net(), clock)
    before = ManifoldMixup(net(), alpha=2.0, layers=["input", "0"], generator=torch.Generator().manual_seed(0))
    assert type(mixer) is ManifoldMixup
    for _ in range(5):
        a, b = mixer.draw(8), before.draw(8)
        assert a.layer == b.layer and torch.equal(a.lam, b.lam) and torch.equal(a.perm, b.perm)


def test_mix_prob_mixes_about_that_share_of_the_steps_from_the_seeded_generator():
    cfg = build_config(Cfg, [], ["mix_prob=0.5"])
    global_rng = torch.get_rng_state()
    runs = [mixed_steps(mixer_from_config(cfg, None, clock), clock, 400) for clock in (Clock(), Clock(), Clock(1))]
    assert torch.equal(torch.get_rng_state(), global_rng)          # never the global RNG
    assert runs[0] == runs[1] and runs[0] != runs[2]                # the seed fixes which steps mix
    assert 170 <= sum(runs[0]) <= 230                               # Binomial(400, 0.5): mean 200, sd 10
    assert sum(mixed_steps(mixer_from_config(build_config(Cfg, [], ["mix_prob=0"]), None, Clock()), Clock(), 50)) == 0


def test_mix_off_epoch_stops_mixing_from_that_epoch_on():
    cfg = build_config(Cfg, [], ["mix_off_epoch=3"])
    clock = Clock()
    mixer = mixer_from_config(cfg, None, clock)     # no model: the plans are drawn, nothing is hooked
    assert isinstance(mixer, GatedMixer)
    assert [all(mixed_steps(mixer, clock, 5, epoch)) for epoch in (1, 2)] == [True, True]
    assert [any(mixed_steps(mixer, clock, 5, epoch)) for epoch in (3, 4)] == [False, False]


def test_draws_within_one_step_follow_one_coin_and_a_restored_generator_replays_the_coins():
    cfg = build_config(Cfg, [], ["mix_prob=0.5"])
    clock = Clock()
    mixer = mixer_from_config(cfg, None, clock)
    for _ in range(20):   # GraphMix draws twice per step: both mix or neither
        assert mixer.draw(6).active == mixer.draw(6).active
        clock.step_count += 1
    saved, at = mixer.generator.get_state(), clock.step_count  # what a checkpoint holds
    after = [mixer.draw(6).active for clock.step_count in range(at, at + 30)]
    resumed_clock = Clock()
    resumed = mixer_from_config(cfg, None, resumed_clock)
    resumed.generator.set_state(saved)
    assert [resumed.draw(6).active for resumed_clock.step_count in range(at, at + 30)] == after


def test_alpha_0_means_no_mixing_and_says_so():
    cfg = build_config(Cfg, [], ["alpha=0"])
    assert not cfg.mixes() and cfg.method_label() == "manifold-nomix"
    assert type(mixer_from_config(cfg, net(), Clock())) is ERM
    assert build_config(Cfg, [], ["method=erm", "alpha=0"]).method_label() == "erm"      # never mixed anyway
    assert build_config(Cfg, [], ["mix_off_epoch=1"]).method_label() == "manifold-nomix"
    assert build_config(Cfg).method_label() == "manifold"
    with pytest.raises(ConfigError, match=r"alpha: -1.0 is out of range: it must be >= 0"):
        build_config(Cfg, [], ["alpha=-1"])


def test_cross_field_rules_of_the_mixing_fields():
    with pytest.raises(ConfigError, match="mix_layers: manifold mixes at a layer drawn from mix_layers"):
        build_config(Cfg, [], ["mix_layers=[]"])
    image = resolve(str(ROOT / "tasks" / "image")).load()
    with pytest.raises(ConfigError, match="per_sample_lambda: cutmix pastes one box per batch"):
        build_config(image.Config, [], ["method=cutmix", "per_sample_lambda=true"])
    assert build_config(image.Config, [], ["method=erm", "mix_layers=[]"]).mix_layers == []


def test_the_new_fields_leave_a_config_hash_alone_until_set():
    base = build_config(SPIRALS.Config, [], SHORT)
    assert config_hash(build_config(SPIRALS.Config, [], [*SHORT, "mix_prob=1.0"])) == config_hash(base)
    assert config_hash(build_config(SPIRALS.Config, [], [*SHORT, "mix_prob=0.5"])) != config_hash(base)
    assert config_hash(build_config(SPIRALS.Config, [], [*SHORT, "per_sample_lambda=true"])) != config_hash(base)


def quiet(*a, **k):
    pass


def test_a_spirals_run_with_mix_prob_resumes_to_the_same_result_and_alpha_0_is_recorded(tmp_path, monkeypatch):
    gated = ["mix_prob=0.5", "mix_off_epoch=4"]
    cfg = build_config(SPIRALS.Config, [], [*SHORT, *gated])
    full = runner.run(SPIRALS, cfg, results_dir=tmp_path / "r1", runs_dir=tmp_path / "full", log=quiet)
    assert full["method"] == "manifold" and full["config"]["mix_prob"] == 0.5
    resumed = killed_then_resumed(SPIRALS, replace(cfg, checkpoint_seconds=0), tmp_path / "broken", tmp_path / "r2",
                                  monkeypatch)
    for key in ("test_nll", "test_acc", "boundary_distance"):
        assert resumed["metrics"][key] == full["metrics"][key], key
    off = runner.run(SPIRALS, build_config(SPIRALS.Config, [], [*SHORT, "alpha=0"]), results_dir=tmp_path / "r3",
                     runs_dir=tmp_path / "off", log=quiet)
    erm = runner.run(SPIRALS, build_config(SPIRALS.Config, [], [*SHORT, "method=erm"]), results_dir=tmp_path / "r3",
                     runs_dir=tmp_path / "erm", log=quiet)
    assert off["method"] == "manifold-nomix" and off["run_id"].startswith("spirals-manifold-nomix-")
    assert off["metrics"]["test_nll"] == erm["metrics"]["test_nll"]


def test_every_committed_records_mixing_is_what_its_method_table_gives():
    """The method tables (one per task) resolve every committed record's config to the backend, alpha and S its
    record says it trained with."""
    import json

    from mixsuite.config import from_record
    from mixsuite.mixing import mixing_used
    from mixsuite.task import resolve

    tasks, checked = {}, 0
    for path in sorted((ROOT / "results").rglob("*.json")):
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or "mixing" not in record or "config" not in record:
            continue
        if record["task"] not in tasks:
            tasks[record["task"]] = resolve(str(ROOT / "tasks" / record["task"])).load()
        cfg = from_record(tasks[record["task"]].Config, record["config"])
        assert mixing_used(cfg) == record["mixing"], path
        checked += 1
    assert checked >= 600 and set(tasks) == {"image", "fewshot", "graphmix", "metric", "handwriting", "spirals", "regression",
                                             "flatten"}


def test_a_method_table_row_gives_its_backend_alpha_layers_and_options():
    from typing import ClassVar

    from mixsuite.mixing import Method

    @dataclass
    class Cfg(MixingConfig, RunConfig):
        method: str = "mine"
        alpha: float | None = None
        mix_layers: list[str] = field(default_factory=lambda: ["input"])
        method_table: ClassVar[dict] = {"mine": Method("manifold", alpha=0.4, layers=["layer1"], options={"k": 1}),
                                        "plain": Method("erm")}

    used = Cfg().method_used()
    assert (used.backend, used.alpha, used.layers, used.options) == ("manifold", 0.4, ["layer1"], {"k": 1})
    assert Cfg(alpha=1.5, mix_layers=["layer2"]).method_used().layers == ["layer2"]   # set fields win
    assert Cfg(alpha=1.5).mixing_alpha() == 1.5 and Cfg(method="plain").mixing_backend() == "erm"
    assert Cfg(method="input").mixing_backend() == "input"     # a method not in the table: the backend of its name
    assert Cfg(method="input").check() == ["alpha: input has no default alpha (its row of the method table); set "
                                           "one, e.g. alpha=1.0"]
