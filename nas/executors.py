"""Where candidate evaluations run: long-lived Ray actors (the default), or in-process.

Executors hold no state a restart needs: the orchestrator leases every task in the store first,
so a lost worker only costs its lease, which expires and is retried.
"""
from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import Any

from foundation.errors import GanasError

from .fields import FieldError, shown
from .worker import SearchWorker, WorkerPayload


class ExecutorError(GanasError):
    """Workers that cannot be started (Ray cluster unreachable, supernet unreadable, ...)."""


class Executor(ABC):
    """Runs :class:`~nas.worker.SearchWorker` workers by name and returns their outcomes.

    A task names the worker method that runs it (``task.method``) and builds the outcome of its
    loss (``task.lost(worker, error)``) when the worker dies under it.
    """

    @abstractmethod
    def start(self, names: list[str], payload: WorkerPayload) -> None: ...

    @abstractmethod
    def submit(self, name: str, task: Any) -> None: ...

    @abstractmethod
    def wait(self, timeout: float) -> list[Any]:
        """Outcomes (:class:`~nas.worker.Outcome` or a finalize job's) that finished within ``timeout`` seconds."""

    @abstractmethod
    def restart(self, name: str) -> None:
        """Kill worker ``name`` (dropping its task) and start it again under the same identity."""

    @abstractmethod
    def shutdown(self) -> None: ...


class LocalExecutor(Executor):
    """Evaluates in this process, one task at a time (for debugging, and machines without Ray)."""

    def start(self, names, payload):
        self.payload = payload
        self.workers = {n: self._build(n) for n in names}
        self.queue: list[tuple[str, Any]] = []

    def _build(self, name):
        return SearchWorker(name, self.payload)

    def submit(self, name, task):
        self.queue.append((name, task))

    def wait(self, timeout):
        if not self.queue:
            return []
        name, task = self.queue.pop(0)
        return [getattr(self.workers[name], task.method)(task)]

    def restart(self, name):
        self.queue = [(n, t) for n, t in self.queue if n != name]
        self.workers[name] = self._build(name)

    def shutdown(self):
        self.workers = {}


class RayExecutor(Executor):
    """Each worker is a Ray actor; the supernet travels through the object store."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        self.address = address
        self.num_cpus = num_cpus
        self.actors: dict[str, Any] = {}
        self.in_flight: dict[Any, tuple[str, Any]] = {}
        self.started_ray = False  # shut Ray down at the end only if this executor started it

    def start(self, names, payload):
        import ray

        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
                else:
                    with _private_cluster_auth():
                        ray.init(num_cpus=self.num_cpus or len(names), include_dashboard=False,
                                 _node_ip_address="127.0.0.1", logging_level="ERROR", log_to_driver=False)
                self.started_ray = True
            except Exception as exc:
                raise ExecutorError(f"cannot start or join Ray ({'address ' + self.address if self.address else 'local'}):"
                                    f" {exc}") from None
        self._ray = ray
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(SearchWorker)
        self._payload_ref = ray.put(payload)  # one copy of the weights in the object store for every worker
        for name in names:
            self.actors[name] = self._spawn(name)
        ray.get([a.ping.remote() for a in self.actors.values()])  # surface load errors now

    def _spawn(self, name):
        return self._actor_class.options(name=None).remote(name, self._payload_ref)

    def submit(self, name, task):
        self.in_flight[getattr(self.actors[name], task.method).remote(task)] = (name, task)

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
                outcomes.append(task.lost(name, f"worker {name} lost: {type(exc).__name__}: {str(exc)[:300]}"))
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

    def shutdown(self):
        if getattr(self, "_ray", None) is None:
            return
        for actor in self.actors.values():  # on a joined cluster the actors would otherwise outlive us
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:  # already dead
                pass
        self.actors, self.in_flight = {}, {}
        if self.started_ray and self._ray.is_initialized():
            self._ray.shutdown()


@contextmanager
def _private_cluster_auth():
    """Token authentication off for the private loopback cluster ganas starts, and only while it starts.

    Ray's token auth protects shared clusters; the variable is restored so that nothing else in
    this process (a later ``ray.init(address=...)``) inherits the exemption.
    """
    before = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = before or "disabled"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("RAY_AUTH_MODE", None)


EXECUTORS = {"ray": RayExecutor, "local": LocalExecutor}


def check_executor(value: Any) -> str:
    """A registered executor name (the rule of the ``executor`` field of a run)."""
    if value not in EXECUTORS:
        raise FieldError("executor", f"unknown executor {shown(value)}; use one of: {', '.join(EXECUTORS)}")
    return value
