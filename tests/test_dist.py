"""Multi-process pieces that run in one process: which device each collective uses, and the collectives on a
one-rank gloo group."""
import pytest
import torch
import torch.distributed as tdist

from mixsuite import dist


@pytest.mark.parametrize("backend, expected", [("nccl", torch.device("cuda", 1)), ("gloo", torch.device("cpu")),
                                               ("NCCL", torch.device("cuda", 1))])
def test_collective_device_follows_the_backend(backend, expected, monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert dist.collective_device(backend) == expected


def test_collective_device_reads_the_process_groups_backend(monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(tdist, "get_backend", lambda group=None: "nccl")
    assert dist.collective_device() == torch.device("cuda", 0)


@pytest.fixture
def one_rank_group():
    tdist.init_process_group("gloo", store=tdist.HashStore(), rank=0, world_size=1)
    yield
    tdist.destroy_process_group()


def test_every_collective_puts_its_tensor_on_the_collective_device(one_rank_group, monkeypatch):
    """Each collective asks collective_device() and hands the process group tensors on that device only."""
    asked, seen = [], []
    original = dist.collective_device

    def spy(backend=None):
        device = original(backend)
        asked.append(str(device))
        return device

    real_all_reduce = tdist.all_reduce

    def all_reduce(t, *a, **k):
        seen.append(t.device.type)
        return real_all_reduce(t, *a, **k)

    monkeypatch.setattr(dist, "collective_device", spy)
    monkeypatch.setattr(tdist, "all_reduce", all_reduce)
    assert dist.all_reduce_mean({"a": 1.5, "b": 3.0}) == {"a": 1.5, "b": 3.0}
    assert dist.broadcast_object({"x": 1}) == {"x": 1}
    dist.barrier()
    assert asked == ["cpu"] * 3 and seen == ["cpu"]
