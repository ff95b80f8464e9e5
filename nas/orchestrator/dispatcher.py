"""Who dispatches: leases a batch's candidates to idle workers, records their outcomes, recovers lost work.

Leases follow the store's contract and clock: a worker's candidate is leased for
``lease_seconds``; when the store's clock passes the lease's expiry, ``requeue_expired`` gives it
back to the queue (counting the attempt) and the hung worker is restarted; a worker restarted
under the same name gets its own unfinished candidates back first (``requeue_owner``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..executors import Executor, WorkerPayload
from ..store import CandidateRecord, CandidateStatus, LeaseError, SearchState, Store
from ..worker import Outcome, Task

WAIT_SECONDS = 0.5  # longest wait for an outcome before the stop request and the leases are looked at again


@dataclass
class _Running:
    candidate_id: int
    config: str
    expires_at: float  # the store's clock


class Dispatcher:
    """Owns the executor and the leases of one search's workers."""

    def __init__(self, store: Store, search_id: int, executor: Executor, lease_seconds: float, samples_dir: Path,
                 log: Callable[[str], None]):
        self.store, self.search_id, self.executor = store, search_id, executor
        self.lease_seconds, self.samples_dir, self.log = lease_seconds, samples_dir, log
        self.workers: list[str] = []

    def start(self, names: list[str], payload: WorkerPayload) -> None:
        """Give each named worker its own unfinished leases back first, free any other lease, start them."""
        returned = sum(self.store.requeue_owner(self.search_id, name) for name in names)
        orphaned = self.store.requeue_leased(self.search_id)  # leases of workers this run does not have
        if returned or orphaned:
            self.log(f"re-queued {returned + orphaned} candidate(s) leased before the restart")
        self.workers = list(names)
        self.executor.start(names, payload)

    def shutdown(self) -> None:
        self.executor.shutdown()

    def release_all(self) -> None:
        """Hand every lease of this run's workers back to the queue (interrupted, or cancelled)."""
        for name in self.workers:
            self.store.requeue_owner(self.search_id, name)

    def evaluate(self, batch: list[CandidateRecord], stop_request: Callable[[], SearchState | None]) -> bool:
        """Lease the batch's candidates to idle workers until every one is finished.

        Returns False when the search was paused (running evaluations are finished first) or
        cancelled (they are dropped and re-queued) before the batch was complete.
        """
        ids = {c.id for c in batch}
        unfinished = set(ids)
        running: dict[str, _Running] = {}
        while True:
            stop = stop_request()
            if stop == SearchState.CANCELLED or (stop == SearchState.PAUSED and not running):
                self.release_all()
                return False
            self._expire(running, unfinished)
            if stop is None:
                for name in self.workers:
                    if name not in running:
                        self._lease(name, ids, running)
            if not running and not unfinished:
                return True
            for outcome in self.executor.wait(timeout=WAIT_SECONDS):
                task = running.pop(outcome.worker, None)
                if self._record(outcome, task):
                    unfinished.discard(outcome.candidate_id)

    def _lease(self, name: str, ids: set[int], running: dict[str, _Running]) -> None:
        for c in self.store.lease_candidates(self.search_id, name, 1, self.lease_seconds):
            if c.id not in ids:  # cannot happen while one orchestrator holds the search: give it back
                self.store.fail_candidate(c.id, name, "leased outside its batch")
                continue
            self.executor.submit(name, Task(c.id, c.config))
            running[name] = _Running(c.id, c.config, c.lease_expires_at)

    def _expire(self, running: dict[str, _Running], unfinished: set[int]) -> None:
        """Re-queue leases past their expiry by the store's clock and restart the workers that held them."""
        now = self.store.clock()
        if not any(r.expires_at is not None and now >= r.expires_at for r in running.values()):
            return
        self.store.requeue_expired(self.search_id, now)
        for name, r in list(running.items()):
            record = self.store.get_candidate(r.candidate_id)
            if record.status == CandidateStatus.LEASED and record.lease_owner == name:
                continue
            self.log(f"worker {name} exceeded the {self.lease_seconds:.0f}s lease on candidate {r.config}; "
                     "restarting it")
            self.executor.restart(name)
            del running[name]
            if record.status != CandidateStatus.QUEUED:
                unfinished.discard(r.candidate_id)  # out of attempts: failed for good

    def _record(self, outcome: Outcome, task: _Running | None) -> bool:
        """Store one outcome; True when its candidate is finished (done, or failed for good)."""
        if outcome.worker_lost:
            self.executor.restart(outcome.worker)
        try:
            if outcome.ok:
                if outcome.sample_png and task is not None:
                    self.samples_dir.mkdir(parents=True, exist_ok=True)
                    (self.samples_dir / f"{task.config}.png").write_bytes(outcome.sample_png)
                self.store.complete_candidate(outcome.candidate_id, outcome.worker, outcome.metrics,
                                              outcome.evaluator, outcome.seconds)
                return True
            record = self.store.fail_candidate(outcome.candidate_id, outcome.worker, outcome.error)
        except LeaseError as exc:  # a late result for a lease that was already given up
            self.log(f"discarded a late result from {outcome.worker}: {exc}")
            return False
        final = record.status == CandidateStatus.FAILED
        self.log(f"candidate {record.config} {'failed for good' if final else 'will be retried'} "
                 f"(attempt {record.attempts}): {outcome.error[:300]}")
        return final
