"""Benchmark: closed-form MACs count vs a thop trace, per config, at 256x256 (or --size).

For each configuration the closed form (:func:`evaluators.closed_form.closed_form_count`) and
the traced count (:func:`evaluators.macs.count_macs` on the static generator built at that
config, real CPU forward pass) must agree; the table shows the time of one count with each and
their ratio. A shape-only trace on the meta device is shown too: the cost of tracing without the
arithmetic. Timings are medians over repeats; the ratio is what matters on a shared machine.

    python bench/bench_macs.py [--size 256] [--repeats 3] [--threads N]
    python bench/bench_macs.py --published     # the counts next to the papers' figures, no timing
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Callable

import torch

from evaluators.closed_form import closed_form_count
from evaluators.macs import count_macs, format_count
from nas.cli.arguments import image_size
from supernet import create_generator


@dataclass(frozen=True)
class Case:
    name: str
    arch: str
    config: tuple[int, ...] | None
    hparams: dict


CASES = (
    Case("CycleGAN ResNet, full width", "resnet", None, {}),
    Case("ResNet 16_16_24_16_32_64_16_24", "resnet", (16, 16, 24, 16, 32, 64, 16, 24), {}),
    Case("mobile ResNet, full width", "mobile_resnet", None, {}),
    Case("mobile ResNet 16_16_24_16_32_64_16_24", "mobile_resnet", (16, 16, 24, 16, 32, 64, 16, 24), {}),
    Case("mobile ResNet all 16", "mobile_resnet", (16,) * 8, {}),
    Case("U-Net 256, full width", "unet", None, {}),
    Case("U-Net 256 16_24_32_48_64_48_32_16", "unet", (16, 24, 32, 48, 64, 48, 32, 16), {}),
)


@dataclass(frozen=True)
class Published:
    """A figure a paper or its code release states, and the ganas count it corresponds to."""

    name: str
    arch: str
    config: tuple[int, ...] | None
    hparams: dict
    size: tuple[int, int]
    macs: str  # as published
    params: str


CITYSCAPES = dict(input_nc=36, num_upsampling_layers="more")  # 35 labels + instance edges, NVlabs's Cityscapes setting
PUBLISHED = (
    Published("CycleGAN ResNet (GAN Compression, OMGD)", "resnet", None, {}, (256, 256), "56.8G", "11.4M"),
    Published("GauGAN, Cityscapes 256x512 (GAN Compression)", "spade", None, CITYSCAPES, (256, 512), "281G", "93.0M"),
    Published("GauGAN, COCO-Stuff 256x256 (GAN Compression)", "spade", None, dict(input_nc=184), (256, 256), "191G",
              "97.5M"),
    Published("GAN Compression's GauGAN subnet 32_32_48_32_32_32_32_24, ngf-48 supernet, Cityscapes",
              "mobile_spade", (32, 32, 48, 32, 32, 32, 32, 24), {"ngf": 48, **CITYSCAPES}, (256, 512), "31.7G",
              "20.4M"),
)


def published_table() -> None:
    """ganas's counts (closed form, checked against a meta-device trace) next to the published figures."""
    print("| network | MACs | published | params | published |")
    print("|---|---:|---:|---:|---:|")
    for case in PUBLISHED:
        count = closed_form_count(case.arch, case.config, case.size, **case.hparams)
        with torch.device("meta"):
            traced = count_macs(create_generator(case.arch, config=case.config, **case.hparams), case.size)
        if traced != count:
            raise SystemExit(f"{case.name}: closed form {count} != trace {traced}")
        print(f"| {case.name} | {count.macs / 1e9:.2f}G | {case.macs} | {count.params / 1e6:.2f}M | {case.params} |",
              flush=True)


@dataclass(frozen=True)
class Row:
    case: Case
    macs: int
    closed_s: float
    trace_s: float
    meta_s: float

    @property
    def ratio(self) -> float:
        return self.trace_s / self.closed_s


def median_time(fn: Callable[[], object], repeats: int, number: int = 1) -> float:
    """Median over ``repeats`` of the mean time of ``number`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


def run_case(case: Case, size: tuple[int, int], repeats: int) -> Row:
    closed = closed_form_count(case.arch, case.config, size, **case.hparams)
    generator = create_generator(case.arch, config=case.config, **case.hparams).eval()
    with torch.device("meta"):
        shapes_only = create_generator(case.arch, config=case.config, **case.hparams)
    traced = count_macs(generator, size)
    if traced != closed or count_macs(shapes_only, size) != closed:
        raise SystemExit(f"{case.name}: closed form {closed} != trace {traced}")
    closed_s = median_time(lambda: closed_form_count(case.arch, case.config, size, **case.hparams), 5, 2000)
    trace_s = median_time(lambda: count_macs(generator, size), repeats)
    meta_s = median_time(lambda: count_macs(shapes_only, size), repeats)
    return Row(case, closed.macs, closed_s, trace_s, meta_s)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"ultralytics-thop {metadata.version('ultralytics-thop')}, Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=image_size, default=(256, 256), metavar="H|HxW")
    parser.add_argument("--repeats", type=int, default=3, help="timed traces per config (median)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--published", action="store_true",
                        help="only the counts of the published networks next to their figures (no timing)")
    args = parser.parse_args(argv)
    if args.published:
        published_table()
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    count_macs(create_generator("resnet", ngf=4, n_blocks=1), (8, 8))  # warm-up: imports, first-call costs
    with torch.device("meta"):
        count_macs(create_generator("resnet", ngf=4, n_blocks=1), (8, 8))
    height, width = args.size
    print(f"machine: {machine()}")
    print(f"size: {height}x{width}, repeats: {args.repeats}\n")
    print("| config | MACs | closed form | thop trace | ratio | meta-device trace | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = []
    for case in CASES:
        row = run_case(case, args.size, args.repeats)
        rows.append(row)
        print(f"| {case.name} | {format_count(row.macs).split(' ')[0]} | {row.closed_s * 1e6:.1f} us | "
              f"{row.trace_s * 1e3:.0f} ms | {row.ratio:,.0f}x | {row.meta_s * 1e3:.1f} ms | "
              f"{row.meta_s / row.closed_s:,.0f}x |", flush=True)
    worst = min(rows, key=lambda r: r.ratio)
    print(f"\nclosed form vs thop trace: {min(r.ratio for r in rows):,.0f}x to {max(r.ratio for r in rows):,.0f}x "
          f"faster (slowest case: {worst.case.name}); every count agreed to the MAC")
    return 0 if worst.ratio >= 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
