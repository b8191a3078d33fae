"""torchrun / DDP helpers. In a single process every one of them is a no-op.

    torchrun --standalone --nproc_per_node=2 -m mixsuite run tasks/spirals
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main() -> bool:
    return rank() == 0


def init(device: torch.device) -> None:
    """Join the process group torchrun describes (WORLD_SIZE > 1): gloo on CPU, nccl on CUDA."""
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 or is_distributed():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        device = collective_device()
        dist.barrier(device_ids=[device.index] if device.type == "cuda" else None)


def collective_device(backend: str | None = None) -> torch.device:
    """Where tensors for a collective must live: the process's CUDA device under NCCL (which has no CPU
    collectives), the CPU under gloo. Every collective here builds or moves its tensors through this one rule."""
    backend = str(backend or dist.get_backend()).lower()
    if backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """Average a dict of numbers over ranks (each rank must pass the same keys)."""
    if not is_distributed() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=collective_device())
    dist.all_reduce(t)
    t /= world_size()
    return dict(zip(keys, t.cpu().tolist()))


def broadcast_object(obj):
    """Rank 0's value of a picklable object, on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=collective_device())
    return box[0]


def wrap_ddp(model: torch.nn.Module, device: torch.device, **options) -> torch.nn.Module:
    """DistributedDataParallel when distributed (mixing happens inside forward, so DDP sees it)."""
    if not is_distributed():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, **options)
