"""The shared per-epoch learning-rate schedules (mixsuite/schedules.py) and the tasks that take them by name."""
import math

import pytest
import torch

from mixsuite.config import ConfigError, build_config, config_hash
from mixsuite.schedules import SCHEDULES, end_epoch, epoch_scheduler


def rates(schedule: str, epochs: int, **kwargs) -> list[float]:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=0.3)
    sched = epoch_scheduler(opt, schedule, epochs, **kwargs)
    out = []
    for _ in range(epochs):
        opt.step()
        out.append(end_epoch(sched))   # the lr the epoch trained with, then the next epoch's
    return out


def test_cosine_follows_its_formula_down_to_zero():
    got = rates("cosine", 6)
    assert got == pytest.approx([0.3 * (1 + math.cos(math.pi * e / 6)) / 2 for e in range(6)], rel=1e-12)
    assert got[0] == 0.3 and got[-1] < 0.3 * 0.07


def test_step_and_constant():
    assert rates("step", 6, milestones=[2, 4], gamma=0.1) == pytest.approx([0.3, 0.3, 0.03, 0.03, 0.003, 0.003])
    assert rates("constant", 4) == [0.3] * 4


def test_a_scheduler_resumes_from_its_state():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    first = epoch_scheduler(opt, "cosine", 10)
    for _ in range(3):
        opt.step()
        first.step()
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    opt2.load_state_dict(opt.state_dict())
    second = epoch_scheduler(opt2, "cosine", 10)
    second.load_state_dict(first.state_dict())
    opt.step(), first.step(), opt2.step(), second.step()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == pytest.approx((1 + math.cos(math.pi * 4 / 10)) / 2)


def test_an_unknown_schedule_names_the_choices():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="constant, step, cosine"):
        epoch_scheduler(opt, "linear", 5)
    assert SCHEDULES == ("constant", "step", "cosine")


def test_fewshot_takes_a_schedule_and_keeps_old_hashes():
    from mixsuite.plugins.fewshot.task import FewShotConfig

    def hash_of(*settings):
        return config_hash(build_config(FewShotConfig, [], ["method=baselinepp", *settings]))

    assert hash_of("schedule=constant") == hash_of() != hash_of("schedule=cosine")
    with pytest.raises(ConfigError, match="schedule"):
        build_config(FewShotConfig, [], ["schedule=step"])
