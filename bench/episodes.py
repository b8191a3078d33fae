"""Batched episodic evaluation vs a per-episode loop, on the same episodes and the same classifier.

    python bench/episodes.py            # 10,000 5-way 5-shot episodes on 100 classes x 600 images x 640-d
    python bench/episodes.py --quick    # 500 episodes, to check it runs

The batched evaluator fits every episode at once; the loop is timed on a sample of episodes and extrapolated.
Prints the figures, then one JSON line: {"speedup": ..., "acc_diff": ...}. Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from _repo import ROOT  # noqa: E402  (first: the checkout's mixsuite importable)

from mixsuite.task import use_task_folders  # noqa: E402

use_task_folders(ROOT / "tasks")
from mixsuite.plugins.fewshot.episodes import (episode_accuracies, episode_accuracies_loop, mean_ci95,  # noqa: E402
                                               sample_episodes)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--episodes", type=int, default=10_000)
    p.add_argument("--loop-sample", type=int, default=100, help="episodes the loop is timed on")
    p.add_argument("--classifier", default="logistic", choices=["logistic", "cosine"])
    args = p.parse_args()
    episodes, sample = (500, 20) if args.quick else (args.episodes, args.loop_sample)

    g = torch.Generator().manual_seed(0)
    n_classes, per_class, dim = 100, 600, 640
    centers = torch.randn(n_classes, dim, generator=g)
    features = centers.repeat_interleave(per_class, 0) + 4.0 * torch.randn(n_classes * per_class, dim, generator=g)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    support, query = sample_episodes(labels, episodes, n_way=5, n_shot=5, n_query=15, seed=0)

    t0 = time.perf_counter()
    batched = episode_accuracies(features, support, query, args.classifier)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop = episode_accuracies_loop(features, support[:sample], query[:sample], classifier=args.classifier)
    t_loop = (time.perf_counter() - t0) / sample * episodes
    acc_diff = (batched[:sample].mean() - loop.mean()).item()
    mean, ci = mean_ci95(batched)
    print(f"{episodes} episodes, 5-way 5-shot, 15 queries, {args.classifier}: accuracy {100 * mean:.2f} ± {100 * ci:.2f} %")
    print(f"batched: {t_batched:.1f} s; loop: {t_loop:.1f} s extrapolated from {sample} episodes; "
          f"max per-episode difference on those {((batched[:sample] - loop).abs().max()).item():.2g}")
    print(json.dumps({"speedup": round(t_loop / t_batched, 1), "acc_diff": round(acc_diff, 6),
                      "batched_s": round(t_batched, 2), "loop_s_extrapolated": round(t_loop, 1)}))


if __name__ == "__main__":
    main()
