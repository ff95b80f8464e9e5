"""Where candidate evaluations run: long-lived Ray actors (the default), or in-process.

Executors hold no state a restart needs: the orchestrator leases every task in the store first,
so a lost worker only costs its lease, which expires and is retried.
"""
from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Mapping

from foundation.errors import GanasError

from .worker import CandidateEvaluator, Outcome, Task


class ExecutorError(GanasError):
    """Workers that cannot be started (Ray cluster unreachable, supernet unreadable, ...)."""


@dataclass(frozen=True)
class WorkerPayload:
    """What every worker is built from."""

    checkpoint: bytes
    sha256: str
    evaluation: Mapping[str, Any]
    threads: int | None = None


class Executor(ABC):
    """Runs :class:`CandidateEvaluator` workers by name and returns their outcomes."""

    @abstractmethod
    def start(self, names: list[str], payload: WorkerPayload) -> None: ...

    @abstractmethod
    def submit(self, name: str, task: Task) -> None: ...

    @abstractmethod
    def wait(self, timeout: float) -> list[Outcome]:
        """Outcomes that finished within ``timeout`` seconds (possibly none)."""

    @abstractmethod
    def restart(self, name: str) -> None:
        """Kill worker ``name`` (dropping its task) and start it again under the same identity."""

    @abstractmethod
    def busy(self) -> set[str]: ...

    @abstractmethod
    def shutdown(self) -> None: ...


class LocalExecutor(Executor):
    """Evaluates in this process, one task at a time (for debugging, and machines without Ray)."""

    def start(self, names, payload):
        self.payload = payload
        self.workers = {n: self._build(n) for n in names}
        self.queue: list[tuple[str, Task]] = []

    def _build(self, name):
        p = self.payload
        return CandidateEvaluator(name, p.checkpoint, p.sha256, p.evaluation, p.threads)

    def submit(self, name, task):
        self.queue.append((name, task))

    def wait(self, timeout):
        if not self.queue:
            return []
        name, task = self.queue.pop(0)
        return [self.workers[name].evaluate(task)]

    def restart(self, name):
        self.queue = [(n, t) for n, t in self.queue if n != name]
        self.workers[name] = self._build(name)

    def busy(self):
        return {n for n, _ in self.queue}

    def shutdown(self):
        self.workers = {}


class RayExecutor(Executor):
    """Each worker is a Ray actor; the supernet travels through the object store."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        self.address = address
        self.num_cpus = num_cpus
        self.actors: dict[str, Any] = {}
        self.in_flight: dict[Any, tuple[str, Task]] = {}

    def start(self, names, payload):
        import ray

        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
                else:
                    # a private local cluster on loopback; Ray's token auth is for shared clusters
                    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
                    ray.init(num_cpus=self.num_cpus or len(names), include_dashboard=False,
                             _node_ip_address="127.0.0.1", logging_level="ERROR", log_to_driver=False)
            except Exception as exc:
                raise ExecutorError(f"cannot start or join Ray ({'address ' + self.address if self.address else 'local'}):"
                                    f" {exc}") from None
        self._ray = ray
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(CandidateEvaluator)
        self._payload = payload
        self._checkpoint_ref = ray.put(payload.checkpoint)
        for name in names:
            self.actors[name] = self._spawn(name)
        ray.get([a.ping.remote() for a in self.actors.values()])  # surface load errors now

    def _spawn(self, name):
        p = self._payload
        return self._actor_class.options(name=None).remote(name, self._checkpoint_ref, p.sha256, dict(p.evaluation),
                                                           p.threads)

    def submit(self, name, task):
        self.in_flight[self.actors[name].evaluate.remote(task)] = (name, task)

    def wait(self, timeout):
        if not self.in_flight:
            time.sleep(min(timeout, 0.05))
            return []
        ready, _ = self._ray.wait(list(self.in_flight), num_returns=1, timeout=timeout)
        outcomes = []
        for ref in ready:
            name, task = self.in_flight.pop(ref)
            try:
                outcomes.append(self._ray.get(ref))
            except Exception as exc:  # the actor died (crash, OOM, killed)
                outcomes.append(Outcome(name, task.candidate_id, False, error=f"worker {name} lost: "
                                        f"{type(exc).__name__}: {str(exc)[:300]}", worker_lost=True))
        return outcomes

    def restart(self, name):
        for ref, (owner, _) in list(self.in_flight.items()):
            if owner == name:
                del self.in_flight[ref]
        try:
            self._ray.kill(self.actors[name], no_restart=True)
        except Exception:  # already dead
            pass
        self.actors[name] = self._spawn(name)

    def busy(self):
        return {name for name, _ in self.in_flight.values()}

    def shutdown(self):
        if getattr(self, "_ray", None) is not None and self._ray.is_initialized():
            self._ray.shutdown()


EXECUTORS = {"ray": RayExecutor, "local": LocalExecutor}
