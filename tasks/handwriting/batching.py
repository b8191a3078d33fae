"""Batches of similar width: sort lines by width, cut into batches, shuffle the batch order each epoch, pad
each batch to its widest line, and shard batches over DDP ranks."""
from __future__ import annotations

import torch
from torch.utils.data import Dataset, Sampler

from mixsuite import dist


class LineDataset(Dataset):
    def __init__(self, lines, alphabet):
        self.lines, self.offsets = lines, lines.offsets.tolist()
        self.targets = [alphabet.encode(t) for t in lines.texts]

    def __len__(self):
        return len(self.lines)

    def __getitem__(self, i):
        start, w = self.offsets[i], int(self.lines.widths[i])
        return self.lines.pixels[:, start:start + w], self.targets[i], i


def collate(items):
    """(images (B, 1, H, Wmax) float in [0, 1], ink = 1; widths; padded targets (B, S); target lengths; indices)."""
    h = items[0][0].shape[0]
    wmax = -(-max(im.shape[1] for im, _, _ in items) // 8) * 8   # the models downsample the width by 8
    x = torch.zeros(len(items), 1, h, wmax)
    for j, (im, _, _) in enumerate(items):
        x[j, 0, :, : im.shape[1]] = 1.0 - im.float() / 255.0
    smax = max(1, max(len(t) for _, t, _ in items))
    targets = torch.zeros(len(items), smax, dtype=torch.long)
    for j, (_, t, _) in enumerate(items):
        targets[j, : len(t)] = torch.tensor(t, dtype=torch.long)
    return (x, torch.tensor([im.shape[1] for im, _, _ in items]), targets,
            torch.tensor([len(t) for _, t, _ in items]), torch.tensor([i for _, _, i in items]))


class BucketBatchSampler(Sampler):
    """Width-sorted batches in a seeded random order per epoch; each rank takes every world_size-th batch."""

    def __init__(self, widths: torch.Tensor, batch_size: int, shuffle: bool = True, seed: int = 0):
        order = torch.argsort(widths, descending=True).tolist()
        self.batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _mine(self):
        idx = list(range(len(self.batches)))
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 10_007 + self.epoch)
            idx = torch.randperm(len(idx), generator=g).tolist()
        world = dist.world_size()
        idx = idx[: len(idx) - len(idx) % world] if world > 1 else idx
        return idx[dist.rank()::world]

    def __iter__(self):
        return iter([self.batches[i] for i in self._mine()])

    def __len__(self):
        return len(self._mine())
