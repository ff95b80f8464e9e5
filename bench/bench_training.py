"""Data-parallel training throughput: one process vs Ray Train with 1 and 2 workers, and the per-step overhead.

One GAN Compression supernet step at 256x256 (teacher ResNet ngf 16 with 9 blocks, the channels-16 mobile-ResNet
supernet with its 1x1 distillation mappings, PatchGAN discriminator; the recipe ``ganas train supernet`` runs),
per-worker batch 1. For each set-up: images per second over the timed steps (start-up excluded: the workers
time their own steps), and for Ray the share of the step spent in the gradient and loss all-reduces. The Ray
bookkeeping (progress reports, the stop check, checkpoints) is what 1 worker loses against one process.

    python bench/bench_training.py [--steps 6] [--size 256] [--workers 1 2]
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from foundation.threads import usable_cores, wait_passively

wait_passively()  # as every ganas command, before torch is imported (see foundation/threads.py)

import torch  # noqa: E402


class RandomPairs(torch.utils.data.Dataset):
    def __init__(self, n: int, size: int):
        g = torch.Generator().manual_seed(0)
        self.a = torch.rand(n, 3, size, size, generator=g) * 2 - 1
        self.b = self.a.flip(1)

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        return {"A": self.a[i], "B": self.b[i]}


def _recipe(size: int, steps: int):
    from distill.gan_compression import GANCompressionRecipe, GANCompressionSettings
    from supernet import create_generator

    torch.manual_seed(0)
    teacher = create_generator("resnet", ngf=16, n_blocks=9).eval()
    settings = GANCompressionSettings(space="channels-16", netd="basic", ndf=64)
    return GANCompressionRecipe(settings, teacher, steps, torch.zeros(1, 3, size, size), seed=0)


def one_process(size: int, steps: int) -> float:
    """Images per second of the single-process loop (the first step, warm-up, not timed)."""
    from distill.loop import BatchOrder, LoopSettings, seeded_step

    recipe, data = _recipe(size, steps + 1), RandomPairs(8, size)
    loop = LoopSettings(steps + 1, 1)
    order = BatchOrder(len(data), 1, 0)
    seeded_step(recipe, data, order, loop, 0)
    began = time.perf_counter()
    for step in range(1, steps + 1):
        seeded_step(recipe, data, order, loop, step)
    return steps / (time.perf_counter() - began)


def on_ray(workers: int, size: int, steps: int) -> dict:
    from distill.loop import LoopSettings
    from nas.ray_training import ClusterSettings, RayTrainRunner

    with tempfile.TemporaryDirectory() as out, RayTrainRunner(ClusterSettings(workers)) as runner:
        return runner(_recipe(size, steps), RandomPairs(8, size), LoopSettings(steps, workers, checkpoint_every=steps),
                      Path(out), progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    torch.set_num_threads(usable_cores())
    print(f"machine: {platform.processor() or platform.machine()}, {usable_cores()} usable cores, torch "
          f"{torch.__version__}; load average before: {os.getloadavg()[0]:.1f}")
    base = one_process(args.size, args.steps)
    print("| set-up | images/s | vs one process | all-reduce share of a step |\n|---|---|---|---|")
    print(f"| one process ({usable_cores()} threads) | {base:.3f} | 1.00x | - |")
    for workers in args.workers:
        result = on_ray(workers, args.size, args.steps)
        rate = result["images_per_second"]
        print(f"| Ray Train, {workers} worker(s) | {rate:.3f} | {rate / base:.2f}x | "
              f"{100 * result['communication_share']:.1f}% |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
