"""Who dispatches: leases a batch of queued work to idle workers, records outcomes, recovers lost work.

Work is anything the store leases per search: candidates to evaluate, or finalize jobs. Leases
follow the store's contract and clock: an item is leased for ``lease_seconds``; when the store's
clock passes the lease's expiry, ``requeue_expired`` gives it back to the queue (the attempt
counts) and the hung worker is restarted. Only the item's own evaluation is charged: when its
worker dies under it (the executor reports it lost: a crash, a killed process, a dead Ray node) or
the run stops, the lease is handed back uncharged (``requeue_owner``) and the worker replaced; a
worker restarted under the same name gets its own unfinished items back first.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable

from ..executors import Executor
from ..store import CandidateRecord, LeaseError, Store
from ..worker import Outcome, Task, WorkerPayload

WAIT_SECONDS = 0.5  # longest wait for an outcome before the stop request and the leases are looked at again
LEASED, QUEUED, FAILED = "leased", "queued", "failed"


class Stop(Enum):
    """What a stop request asks of a running dispatch."""

    FINISH = "finish"  # paused: lease nothing more, finish the running work
    HAND_BACK = "hand back"  # cancelled, or the process was asked to end: hand every lease back now, uncharged


class WorkQueue(ABC):
    """One kind of leased work of a search, as the store keeps it (records have id, config, status, lease fields)."""

    def __init__(self, store: Store, search_id: int):
        self.store, self.search_id = store, search_id

    @abstractmethod
    def lease(self, owner: str, ttl: float) -> Any | None:
        """The next queued item for ``owner`` (its own re-queued items first), leased; None when none is left."""

    @abstractmethod
    def get(self, item_id: int) -> Any: ...

    @abstractmethod
    def task(self, record: Any) -> Any:
        """What the worker runs for ``record`` (a task with ``method`` and ``lost``)."""

    @abstractmethod
    def complete(self, outcome: Any, record_config: str) -> None:
        """Store a successful outcome (raises LeaseError when the lease was given up meanwhile)."""

    @abstractmethod
    def fail(self, item_id: int, owner: str, error: str) -> Any:
        """Re-queue while attempts remain, else mark failed; returns the record."""

    @abstractmethod
    def requeue_owner(self, owner: str, reason: str | None = None, lost: bool = True) -> int:
        """Hand back ``owner``'s leases without charging an attempt (``reason``: why, recorded as the last error;
        ``lost=False``: handed back on purpose, so not counted towards the lost-lease limit either)."""

    @abstractmethod
    def requeue_leased(self) -> int: ...

    @abstractmethod
    def requeue_expired(self, now: float) -> int: ...


class CandidateQueue(WorkQueue):
    """A search's candidates: evaluated by workers, their sample grids kept in the workspace."""

    def __init__(self, store: Store, search_id: int, samples_dir: Path):
        super().__init__(store, search_id)
        self.samples_dir = samples_dir

    def lease(self, owner, ttl):
        leased = self.store.lease_candidates(self.search_id, owner, 1, ttl)
        return leased[0] if leased else None

    def get(self, item_id):
        return self.store.get_candidate(item_id)

    def task(self, record: CandidateRecord) -> Task:
        return Task(record.id, record.config)

    def complete(self, outcome: Outcome, record_config: str) -> None:
        if outcome.sample_png:
            self.samples_dir.mkdir(parents=True, exist_ok=True)
            (self.samples_dir / f"{record_config}.png").write_bytes(outcome.sample_png)
        self.store.complete_candidate(outcome.candidate_id, outcome.worker, outcome.metrics, outcome.evaluator,
                                      outcome.seconds)

    def fail(self, item_id, owner, error):
        return self.store.fail_candidate(item_id, owner, error)

    def requeue_owner(self, owner, reason=None, lost=True):
        return self.store.requeue_owner(self.search_id, owner, reason, lost)

    def requeue_leased(self):
        return self.store.requeue_leased(self.search_id)

    def requeue_expired(self, now):
        return self.store.requeue_expired(self.search_id, now)


@dataclass
class _Running:
    item_id: int
    config: str
    expires_at: float | None  # the store's clock


class Dispatcher:
    """Owns the executor and the leases of one search's workers."""

    def __init__(self, executor: Executor, lease_seconds: float, log: Callable[[str], None]):
        self.executor, self.lease_seconds, self.log = executor, lease_seconds, log
        self.workers: list[str] = []

    def start(self, names: list[str], payload: WorkerPayload, queue: WorkQueue) -> None:
        """Give each named worker its own unfinished leases back first, free any other lease, start them."""
        returned = sum(queue.requeue_owner(name, f"{name} was restarted with the orchestrator while running it")
                       for name in names)
        orphaned = queue.requeue_leased()  # leases of workers this run does not have
        if returned or orphaned:
            self.log(f"re-queued {returned + orphaned} item(s) leased before the restart (not counted as attempts)")
        self.workers = list(names)
        self.executor.start(names, payload)

    def shutdown(self) -> None:
        self.executor.shutdown()

    def release_all(self, queue: WorkQueue) -> int:
        """Hand every lease of this run's workers back to the queue, uncharged (interrupted, or cancelled)."""
        return sum(queue.requeue_owner(name, f"{name} was stopped while running it", lost=False)
                   for name in self.workers)

    def run_one(self, task: Any, stop_request: Callable[[], Stop | None] = lambda: None) -> Any:
        """Run one unleased task (the teacher's evaluation) on the first worker and return its outcome; None
        when :attr:`Stop.HAND_BACK` is requested first (the task holds no lease: nothing to hand back)."""
        name = self.workers[0]
        self.executor.submit(name, task)
        while True:
            if stop_request() is Stop.HAND_BACK:
                return None
            for outcome in self.executor.wait(timeout=WAIT_SECONDS):
                if outcome.worker_lost:
                    self.executor.restart(outcome.worker)
                return outcome

    def run(self, queue: WorkQueue, ids: set[int], stop_request: Callable[[], Stop | None]) -> bool:
        """Lease the queue's items ``ids`` to idle workers until every one is finished.

        Returns False when a stop was requested before all were finished: :attr:`Stop.FINISH` finishes the
        running work first, :attr:`Stop.HAND_BACK` hands it back to the queue at once.
        """
        unfinished = set(ids)
        running: dict[str, _Running] = {}
        while True:
            stop = stop_request()
            if stop is Stop.HAND_BACK or (stop is Stop.FINISH and not running):
                released = self.release_all(queue)
                if released:
                    self.log(f"handed {released} running item(s) back to the queue (not counted as attempts)")
                return False
            self._expire(queue, running, unfinished)
            if stop is None:
                for name in self.workers:
                    if name not in running and self.executor.ready(name):
                        self._lease(queue, name, ids, running)
            if not running and not unfinished:
                return True
            for outcome in self.executor.wait(timeout=WAIT_SECONDS):
                work = running.pop(outcome.worker, None)
                if work is not None and self._record(queue, outcome, work):
                    unfinished.discard(work.item_id)

    def _lease(self, queue: WorkQueue, name: str, ids: set[int], running: dict[str, _Running]) -> None:
        record = queue.lease(name, self.lease_seconds)
        if record is None:
            return
        if record.id not in ids:  # cannot happen while one orchestrator holds the search: give it back
            queue.fail(record.id, name, "leased outside its batch")
            return
        self.executor.submit(name, queue.task(record))
        running[name] = _Running(record.id, record.config, record.lease_expires_at)

    def _expire(self, queue: WorkQueue, running: dict[str, _Running], unfinished: set[int]) -> None:
        """Re-queue leases past their expiry by the store's clock and restart the workers that held them."""
        now = queue.store.clock()
        if not any(r.expires_at is not None and now >= r.expires_at for r in running.values()):
            return
        queue.requeue_expired(now)
        for name, r in list(running.items()):
            record = queue.get(r.item_id)
            if _status(record) == LEASED and record.lease_owner == name:
                continue
            self.log(f"worker {name} exceeded the {self.lease_seconds:.0f}s lease on {r.config}; restarting it")
            self.executor.restart(name)
            del running[name]
            if _status(record) != QUEUED:
                unfinished.discard(r.item_id)  # out of attempts: failed for good

    def _record(self, queue: WorkQueue, outcome: Any, work: _Running) -> bool:
        """Store one outcome; True when its item is finished (done, or failed for good)."""
        if outcome.worker_lost:
            self.executor.restart(outcome.worker)
            return self._hand_back(queue, outcome, work)
        try:
            if outcome.ok:
                queue.complete(outcome, work.config)
                return True
            record = queue.fail(work.item_id, outcome.worker, outcome.error)
        except LeaseError as exc:  # a late result for a lease that was already given up
            self.log(f"discarded a late result from {outcome.worker}: {exc}")
            return False
        final = _status(record) == FAILED
        self.log(f"{record.config} {'failed for good' if final else 'will be retried'} "
                 f"(attempt {record.attempts}): {outcome.error[:300]}")
        return final

    def _hand_back(self, queue: WorkQueue, outcome: Any, work: _Running) -> bool:
        """The worker died under the item: back to the queue without charging an attempt (the lost-lease bound
        still ends a config that kills its worker every time); True when it was given up."""
        if not queue.requeue_owner(outcome.worker, outcome.error):
            self.log(f"{outcome.worker} was lost after its lease on {work.config} ended: {outcome.error[:300]}")
            return False
        record = queue.get(work.item_id)
        final = _status(record) == FAILED
        self.log(f"{record.config}: {outcome.error[:300]}; {'given up' if final else 're-queued'} "
                 f"(lost lease {record.lost}, not counted as an attempt); worker {outcome.worker} replaced")
        return final


def _status(record: Any) -> str:
    return getattr(record.status, "value", record.status)
