"""Thread policies under CPU contention: which torch thread settings degrade least when other work shares the cores.

A training step (a mobile-ResNet generator at ngf 16 and 64x64, batch 4, L1 loss, Adam: forward and
backward, the work of every ganas training job) and an evaluation step (the same generator, forward
only, batch 8, as a search worker) are timed in fresh processes, so that OpenMP reads its
environment, under each policy and each load:

- policies: torch's default (one thread per core), 1 thread, the default with
  ``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP threads sleep instead of spinning), and
  ``threads = cores // processes`` for the two-process loads;
- loads: alone; one other busy process (a pure-Python loop, the lightest possible competitor); the
  same job twice at once (two search workers, or training next to a search worker).

Each cell is the median step time in ms; the ratio is to the default policy alone. Run from the
repository root on an otherwise idle machine:  python bench/bench_threads.py [--seconds 12]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

# The timed job, run as ``python bench_threads.py --child JOB SECONDS`` in a fresh interpreter.
CHILD = "--child"


def _child(job: str, seconds: float) -> None:
    import torch

    from supernet import create_generator

    threads = os.environ.get("BENCH_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    net = create_generator("mobile_resnet", ngf=16, n_blocks=6)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-4)
    batch = 4 if job == "train" else 8
    x, y = torch.randn(batch, 3, 64, 64), torch.randn(batch, 3, 64, 64)

    def step() -> None:
        if job == "train":
            optimizer.zero_grad()
            torch.nn.functional.l1_loss(net(x), y).backward()
            optimizer.step()
        else:
            with torch.no_grad():
                net(x)

    for _ in range(3):
        step()
    times, start = [], time.perf_counter()
    while (time.perf_counter() - start < seconds or len(times) < 5) and len(times) < 200:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"median_ms": 1000 * statistics.median(times), "steps": len(times),
                      "threads": torch.get_num_threads()}))


@dataclass(frozen=True)
class Policy:
    name: str
    threads: int | None  # None: torch's default
    passive: bool = False

    def env(self) -> dict:
        env = dict(os.environ)
        for key in ("OMP_NUM_THREADS", "BENCH_THREADS", "OMP_WAIT_POLICY"):
            env.pop(key, None)
        if self.threads is not None:
            env["BENCH_THREADS"] = str(self.threads)
        if self.passive:
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        return env


def _spawn(job: str, seconds: float, policy: Policy) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, CHILD, job, str(seconds)], env=policy.env(),
                            stdout=subprocess.PIPE, text=True)


def _result(process: subprocess.Popen) -> dict:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"a timed child failed (exit {process.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def measure(job: str, seconds: float, policy: Policy, load: str) -> dict:
    """Median step time of ``job`` under ``policy`` with ``load`` running beside it."""
    competitor = None
    if load == "busy":
        competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        if load == "twice":
            first, second = _spawn(job, seconds, policy), _spawn(job, seconds, policy)
            results = [_result(first), _result(second)]
            return {"median_ms": statistics.mean(r["median_ms"] for r in results), "threads": results[0]["threads"]}
        return _result(_spawn(job, seconds, policy))
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == CHILD:
        _child(argv[1], float(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="timed seconds per cell (default 12)")
    parser.add_argument("--jobs", default="train,evaluate")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    policies = [Policy("default", None), Policy("1 thread", 1), Policy("default + passive", None, passive=True),
                Policy("1 thread + passive", 1, passive=True)]
    loads = ("alone", "busy", "twice")
    print(f"cores {cores}; load average before: {os.getloadavg()[0]:.2f}; {args.seconds:.0f} s per cell", flush=True)
    print("| job | policy | threads | " + " | ".join(f"{load} (ms)" for load in loads) + " | busy vs default alone |"
          " twice vs default alone |")
    print("|---|---|---|" + "---|" * (len(loads) + 2))
    for job in args.jobs.split(","):
        baseline = None
        for policy in policies:
            cells = {load: measure(job, args.seconds, policy, load) for load in loads}
            baseline = baseline or cells["alone"]["median_ms"]
            row = [f"{cells[load]['median_ms']:.0f}" for load in loads]
            print(f"| {job} | {policy.name} | {cells['alone']['threads']} | " + " | ".join(row)
                  + f" | {cells['busy']['median_ms'] / baseline:.1f}x | {cells['twice']['median_ms'] / baseline:.1f}x |",
                  flush=True)
    print(f"ratios are to the default policy alone; load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
