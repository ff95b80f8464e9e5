"""How many threads torch gets in a ganas process, and how its idle threads wait.

Measured on this project's 2-core machines (``bench/bench_threads.py``, docs/benchmarks.md "Threads
under contention"): OpenMP's idle threads spin by default, so two processes that each run one thread
per core slow each other down 60-80x; with ``OMP_WAIT_POLICY=PASSIVE`` the same pair loses 1.7-1.8x,
and with one thread each nothing. Hence the two rules here: every ganas process waits passively
(set before torch is imported, which is when OpenMP reads it), and N processes that work at once
(search or finalize workers) share the cores, ``cores // N`` threads each.
"""
from __future__ import annotations

import os
from typing import MutableMapping

WAIT_POLICY = "OMP_WAIT_POLICY"


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API (macOS)
        return max(1, os.cpu_count() or 1)


def threads_per_process(processes: int) -> int:
    """Threads for each of ``processes`` processes working at once on this machine's cores."""
    return max(1, usable_cores() // max(1, processes))


def wait_passively(environ: MutableMapping[str, str] | None = None) -> None:
    """Idle OpenMP threads sleep instead of spinning, unless the user chose a policy; child processes
    (Ray's workers on a cluster ganas starts) inherit it. Has no effect once torch is imported."""
    (os.environ if environ is None else environ).setdefault(WAIT_POLICY, "PASSIVE")
