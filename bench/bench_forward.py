"""Forward time on CPU: the elastic supernet at a config vs the subnet extracted at it vs the full teacher.

Answers two questions: does running a config through the supernet (weight slicing every call)
cost more than its extracted subnet (target: at most 1.05x), and how much faster than the
ResNet teacher a subnet really is next to its MACs ratio (separable convs are memory-bound
on CPU, so MACs overstate the speed-up).

The three networks are timed in interleaved rounds, with the order rotated every round, so
load from other processes hits all of them alike; medians and p90 are reported.

    python bench/bench_forward.py                 # 256x256, 15 timed rounds per config, torch's threads
    python bench/bench_forward.py --threads 1     # steadier on a shared machine (2 minutes here)
    python bench/bench_forward.py --runs 20 --threads 4 --json forward.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from evaluators.closed_form import generator_count
from supernet import create_generator, extract_subnet, get_space
from supernet.space import Config, format_config, parse_config_numbers

GAN_COMPRESSION_CYCLEGAN = "16_16_24_16_32_64_16_24"  # the published horse2zebra subnet, 2.67G MACs


@dataclass(frozen=True)
class Timing:
    """Wall-clock median, p90 and p10, and the median CPU time of this process (all its threads).

    On a loaded machine p10 (the least disturbed runs) is the steadiest wall-clock figure.
    """

    median_ms: float
    p90_ms: float
    p10_ms: float
    cpu_median_ms: float

    @classmethod
    def of(cls, wall: list[float], cpu: list[float]) -> "Timing":
        ms = np.asarray(wall) * 1e3
        return cls(float(np.median(ms)), float(np.percentile(ms, 90)), float(np.percentile(ms, 10)),
                   float(np.median(cpu)) * 1e3)


@dataclass(frozen=True)
class ConfigResult:
    """One config: supernet and subnet times, the teacher timed in the same rounds, and MACs."""

    label: str
    config: str
    supernet: Timing
    subnet: Timing
    teacher: Timing
    super_over_sub: float  # ratio of wall-clock medians
    paired_super_over_sub: float  # median of per-round wall-clock ratios (each pair ran back to back)
    cpu_super_over_sub: float  # ratio of CPU-time medians: least affected by other processes (1 thread)
    subnet_macs: int
    teacher_macs: int
    max_abs_diff: float  # supernet at config vs extracted subnet, same input

    @property
    def p10_super_over_sub(self) -> float:
        return self.supernet.p10_ms / self.subnet.p10_ms

    @property
    def macs_ratio(self) -> float:
        return self.teacher_macs / self.subnet_macs

    @property
    def speedup(self) -> float:
        return self.teacher.median_ms / self.subnet.median_ms


def interleaved_times(runners: dict[str, Callable[[], object]], warmup: int,
                      runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """(wall, CPU) seconds of every runner, once per round in an order rotated each round; warm-up dropped."""
    names = list(runners)
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in names}
    for round_index in range(warmup + runs):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = time.perf_counter(), time.process_time()
            runners[name]()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if round_index >= warmup:
                times[name][0].append(wall)
                times[name][1].append(cpu)
    return times


def bench_config(label: str, config: Config, supernet, teacher, x: torch.Tensor, warmup: int,
                 runs: int) -> ConfigResult:
    subnet = extract_subnet(supernet, config).eval()
    with torch.no_grad():
        diff = float((supernet(x, config) - subnet(x)).abs().max())
        times = interleaved_times({"supernet": lambda: supernet(x, config), "subnet": lambda: subnet(x),
                                   "teacher": lambda: teacher(x)}, warmup, runs)
    size = tuple(x.shape[-2:])
    sup, sub = Timing.of(*times["supernet"]), Timing.of(*times["subnet"])
    paired = statistics.median(a / b for a, b in zip(times["supernet"][0], times["subnet"][0]))
    return ConfigResult(label, format_config(config), sup, sub, Timing.of(*times["teacher"]),
                        sup.median_ms / sub.median_ms, paired, sup.cpu_median_ms / sub.cpu_median_ms,
                        generator_count(subnet, size).macs, generator_count(teacher, size).macs, diff)


def machine() -> dict[str, object]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu": model, "logical_cpus": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(),
            "load_average": [round(v, 2) for v in os.getloadavg()]}


def markdown(results: list[ConfigResult], info: dict[str, object], command: str) -> str:
    teacher_ms = [r.teacher.median_ms for r in results]
    lines = [f"Command: `{command}`", "",
             f"Machine: {info['cpu']}, {info['logical_cpus']} logical CPUs, torch {info['torch']}, "
             f"torch.get_num_threads() = {info['threads']}; load average (1, 5, 15 min) {info['load_average']} "
             f"at start, {info['load_average_end']} at end.", "",
             "Supernet at a config vs the subnet extracted at it (target: at most 1.05x):", "",
             "| config | label | supernet ms, median / p90 | subnet ms, median / p90 | ratio of medians "
             "(paired) | p10 ratio | CPU-time ratio |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| `{r.config}` | {r.label} | {r.supernet.median_ms:.0f} / {r.supernet.p90_ms:.0f} | "
                     f"{r.subnet.median_ms:.0f} / {r.subnet.p90_ms:.0f} | {r.super_over_sub:.3f} "
                     f"({r.paired_super_over_sub:.3f}) | {r.p10_super_over_sub:.3f} | {r.cpu_super_over_sub:.3f} |")
    lines += ["", f"Subnet vs the teacher (ResNet ngf 64, 9 blocks, {results[0].teacher_macs / 1e9:.2f}G MACs), "
                  "timed in the same rounds:", "",
              "| config | label | subnet MACs | teacher / subnet MACs | subnet ms | teacher ms | "
              "teacher / subnet time |",
              "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| `{r.config}` | {r.label} | {r.subnet_macs / 1e9:.2f}G | {r.macs_ratio:.1f}x | "
                     f"{r.subnet.median_ms:.0f} | {r.teacher.median_ms:.0f} | {r.speedup:.1f}x |")
    lines += ["", f"Teacher median over the {len(results)} configs' rounds: {statistics.median(teacher_ms):.0f} ms "
                  f"(per-config medians {min(teacher_ms):.0f}-{max(teacher_ms):.0f} ms)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="square input size (default 256)")
    parser.add_argument("--space", default="channels-64-cycleGAN", help="search space of the supernet")
    parser.add_argument("--runs", type=int, default=15, help="timed rounds per config (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--random", type=int, default=2, help="random configs besides the fixed three")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    space = get_space(args.space)
    torch.manual_seed(args.seed)
    teacher = create_generator("resnet", ngf=64, n_blocks=9).eval()
    supernet = create_generator(space.architecture, elastic=True, ngf=space.ngf).eval()
    configs = [("largest", space.largest()), ("smallest", space.smallest())]
    published = parse_config_numbers(GAN_COMPRESSION_CYCLEGAN)
    if space.contains(published):
        configs.append(("GAN Compression", published))
    configs += [(f"random {i + 1}", c) for i, c in enumerate(space.sample(args.random, "uniform", args.seed))]
    x = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(args.seed))
    results = []
    for label, config in configs:
        result = bench_config(label, config, supernet, teacher, x, args.warmup, args.runs)
        results.append(result)
        print(f"{label:16s} {result.config:26s} supernet {result.supernet.median_ms:7.1f} ms  subnet "
              f"{result.subnet.median_ms:7.1f} ms  ratio {result.super_over_sub:.3f} "
              f"(paired {result.paired_super_over_sub:.3f}, CPU {result.cpu_super_over_sub:.3f})  "
              f"teacher {result.teacher.median_ms:7.1f} ms  "
              f"|diff| {result.max_abs_diff:.1e}", file=sys.stderr)
    info["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    command = "python bench/bench_forward.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(markdown(results, info, command.strip()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "command": command.strip(),
                       "results": [asdict(r) | {"macs_ratio": r.macs_ratio, "speedup": r.speedup,
                                                "p10_super_over_sub": r.p10_super_over_sub} for r in results]},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
