"""Where candidate evaluations run: long-lived Ray actors (the default), or in-process.

Executors hold no state a restart needs: the orchestrator leases every task in the store first.
A worker that dies under a task (its process killed or crashed, its Ray node gone) is reported at
once as lost (``task.lost``): the dispatcher hands the lease back without charging an attempt and
the worker is replaced; an exception raised by the evaluation itself is the task's own failure.
"""
from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from foundation.errors import GanasError, describe_error

from .fields import FieldError, shown
from .worker import SearchWorker, WorkerPayload

LOOPBACK = "127.0.0.1"


class ExecutorError(GanasError):
    """Workers that cannot be started (Ray cluster unreachable, supernet unreadable, ...)."""


class WorkerStartError(ExecutorError):
    """A worker could not load what every worker loads (the supernet, the teacher, the dataset, the metric networks)."""


class Executor(ABC):
    """Runs :class:`~nas.worker.SearchWorker` workers by name and returns their outcomes.

    A task names the worker method that runs it (``task.method``) and builds the outcome of its
    loss (``task.lost(worker, error)``) when the worker dies under it.
    """

    @abstractmethod
    def start(self, names: list[str], payload: WorkerPayload) -> None: ...

    def ready(self, name: str) -> bool:
        """Whether worker ``name`` can take a task now (a replacement may still be starting)."""
        return True

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


class RayWorker:
    """The Ray actor: a :class:`SearchWorker`, or the error that kept it from loading.

    Ray reports an exception raised in an actor's constructor only as text ("the actor died ...",
    with a coloured traceback); kept here and raised by every call, it reaches the driver as itself.
    """

    def __init__(self, name: str, payload: WorkerPayload):
        self.name = name
        try:
            self.worker, self.error = SearchWorker(name, payload), None
        except Exception as exc:
            self.worker, self.error = None, WorkerStartError(f"worker {name} could not start: {describe_error(exc)}")

    def ping(self) -> str:
        if self.error is not None:
            raise self.error
        return self.name

    def run(self, method: str, task: Any) -> Any:
        self.ping()
        return getattr(self.worker, method)(task)


class RayExecutor(Executor):
    """Each worker is a Ray actor; the supernet travels through the object store.

    A dead actor (its process killed, its node gone) makes its task's result an error at once: the
    task is reported lost and the actor replaced; the replacement takes tasks once it is up.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        self.address = address
        self.num_cpus = num_cpus
        self.actors: dict[str, Any] = {}
        self.starting: dict[str, Any] = {}  # name -> the ping of an actor not known to be up yet
        self.in_flight: dict[Any, tuple[str, Any]] = {}
        self.started_ray = False  # shut Ray down at the end only if this executor started it

    def start(self, names, payload):
        import ray

        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
                else:
                    start_local_ray(self.num_cpus or len(names))
                self.started_ray = True
            except Exception as exc:
                where = f"address {self.address}" if self.address else "local"
                raise ExecutorError(f"cannot start or join Ray ({where}): {describe_error(exc)}") from None
        self._ray = ray
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(RayWorker)
        self._payload_ref = ray.put(payload)  # one copy of the weights in the object store for every worker
        for name in names:
            self.actors[name] = self._spawn(name)
        for name in names:  # surface load errors now
            self._started(name, self.starting.pop(name))

    def _spawn(self, name):
        actor = self._actor_class.options(name=None).remote(name, self._payload_ref)
        self.starting[name] = actor.ping.remote()
        return actor

    def _get(self, ref):
        """``ray.get(ref)``; an error of the worker's loading is raised as the :class:`WorkerStartError` it is."""
        from ray.exceptions import RayTaskError

        try:
            return self._ray.get(ref)
        except RayTaskError as exc:
            if isinstance(exc.cause, WorkerStartError):
                raise exc.cause from None
            raise

    def _started(self, name, ping) -> None:
        """Wait for a new actor's ping: a worker that cannot start fails the run with why."""
        from ray.exceptions import RayError

        try:
            self._get(ping)
        except RayError as exc:
            raise ExecutorError(f"worker {name} could not start: {describe_error(exc)}") from None

    def ready(self, name):
        ref = self.starting.get(name)
        if ref is None:
            return True
        if not self._ray.wait([ref], timeout=0)[0]:
            return False
        del self.starting[name]
        self._started(name, ref)
        return True

    def submit(self, name, task):
        self.in_flight[self.actors[name].run.remote(task.method, task)] = (name, task)

    def wait(self, timeout):
        if not self.in_flight:
            time.sleep(min(timeout, 0.05))
            return []
        ready, _ = self._ray.wait(list(self.in_flight), num_returns=1, timeout=timeout)
        return [self._outcome(*self.in_flight.pop(ref), ref) for ref in ready]

    def _outcome(self, name, task, ref):
        from ray.exceptions import RayError, RayTaskError

        try:
            return self._get(ref)
        except RayTaskError as exc:  # raised by the task on the worker, outside the worker's own guard: its failure
            return replace(task.lost(name, describe_error(exc)), worker_lost=False)
        except RayError as exc:  # the actor, its process or its node died: not the task's doing
            return task.lost(name, f"worker {name} lost: {describe_error(exc)}")

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
        self.actors, self.in_flight, self.starting = {}, {}, {}
        if self.started_ray and self._ray.is_initialized():
            self._ray.shutdown()


def start_local_ray(num_cpus: int) -> None:
    """Start the private one-machine Ray cluster of a search, every service listening on 127.0.0.1 only."""
    import ray

    with _private_loopback_cluster():
        ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address=LOOPBACK, logging_level="ERROR",
                 log_to_driver=False)


@contextmanager
def _private_loopback_cluster():
    """While the private cluster starts: token authentication off, and the loopback node address kept.

    Ray's token auth protects shared clusters. Ray also replaces a loopback ``_node_ip_address`` by the
    machine's routable address (then its GCS, raylet, workers and agents listen on every interface)
    unless clusters are disabled, as they are by default on macOS and Windows; its processes started
    here inherit the variable. Both are restored so that nothing else in this process (a later
    ``ray.init(address=...)``) inherits the exemptions.
    """
    from ray._private import ray_constants

    saved = {key: os.environ.get(key) for key in _LOOPBACK_ENV}
    clusters = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    os.environ["RAY_AUTH_MODE"] = saved["RAY_AUTH_MODE"] or "disabled"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False  # read when ray.init resolves the node address
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if clusters is not None:
            ray_constants.ENABLE_RAY_CLUSTER = clusters


_LOOPBACK_ENV = ("RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")


EXECUTORS = {"ray": RayExecutor, "local": LocalExecutor}


def check_executor(value: Any) -> str:
    """A registered executor name (the rule of the ``executor`` field of a run)."""
    if value not in EXECUTORS:
        raise FieldError("executor", f"unknown executor {shown(value)}; use one of: {', '.join(EXECUTORS)}")
    return value


def worker_threads(chosen: int | None, workers: int, ray_address: str | None) -> int | None:
    """Torch threads per worker: ``chosen``, else this machine's cores shared by the ``workers`` it runs
    (see :mod:`foundation.threads`); None on a cluster ganas joins, whose nodes' cores it does not know."""
    if chosen is not None:
        return chosen
    from foundation.threads import threads_per_process

    return threads_per_process(workers) if ray_address is None else None
