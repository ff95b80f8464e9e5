"""The store's finalize jobs and final models: queued per (search, config), leased to workers and retried
by the same lease code as candidates (:class:`~nas.store.store.Store` mixes this in)."""
from __future__ import annotations

from typing import Iterable, Mapping

from sqlalchemy import case, insert, select

from foundation.errors import clean_message

from .errors import NotFoundError
from .models import final_record, finals, max_attempts
from .records import FinalRecord, FinalStatus, NewFinal, check_json, check_metrics, check_name, check_seconds

Q = FinalStatus.QUEUED.value


class FinalJobs:
    """Finalize jobs of a search; needs the store's ``db``, ``clock`` and its generic lease helpers."""

    def add_finals(self, search_id: int, items: Iterable[NewFinal]) -> tuple[FinalRecord, ...]:
        """Queue configs of a search for finalizing; a config already there is returned as it is (done or not)."""
        items = list(items)
        now = self.clock()
        with self.db.write() as conn:
            self._search_row(conn, search_id)
            known = {r.config for r in conn.execute(select(finals.c.config).where(finals.c.search_id == search_id))}
            rows = [dict(search_id=search_id, config=i.config, budget=i.budget, steps=i.steps,
                         settings=check_json(dict(i.settings or {}), "fine-tune settings"), macs=i.macs,
                         params=i.params, status=FinalStatus.QUEUED.value, before={}, after={}, teacher={},
                         files={}, export_errors={}, attempts=0, lost=0, created_at=now)
                    for i in {i.config: i for i in items}.values() if i.config not in known]
            if rows:
                conn.execute(insert(finals), rows)
            query = select(finals).where(finals.c.search_id == search_id,
                                         finals.c.config.in_([i.config for i in items]))
            by_config = {r.config: final_record(r) for r in conn.execute(query)}
        return tuple(by_config[i.config] for i in items)

    def lease_finals(self, search_id: int, owner: str, n: int, ttl_seconds: float) -> tuple[FinalRecord, ...]:
        """Lease up to ``n`` queued finalize jobs to ``owner`` (its own re-queued ones first), as candidates are."""
        return self._lease(finals, final_record, finals.c.id, search_id, owner, n, ttl_seconds)

    def complete_final(self, final_id: int, owner: str, *, before: Mapping[str, float], after: Mapping[str, float],
                       teacher: Mapping[str, float], evaluator: str, split: str, latency_ms: float | None,
                       teacher_latency_ms: float | None, files: Mapping[str, str],
                       export_errors: Mapping[str, float], seconds: float) -> FinalRecord:
        """Record ``owner``'s finished job: figures on the held-out split, latencies, the written files."""
        values = dict(status=FinalStatus.DONE.value, before=check_metrics(before), after=check_metrics(after),
                      teacher=check_metrics(teacher), evaluator=check_name(evaluator, "evaluator identity"),
                      split=check_name(split, "split"), files=check_json(dict(files), "files"),
                      export_errors=check_metrics(export_errors), seconds=check_seconds(seconds, "seconds"),
                      latency_ms=None if latency_ms is None else check_seconds(latency_ms, "latency_ms"),
                      teacher_latency_ms=None if teacher_latency_ms is None else
                      check_seconds(teacher_latency_ms, "teacher_latency_ms"), error=None)
        return self._end_lease(finals, final_record, final_id, owner, values)

    def fail_final(self, final_id: int, owner: str, error: str) -> FinalRecord:
        """``owner``'s job failed: re-queue while attempts remain, else mark it failed with ``error``."""
        now = self.clock()
        out_of_attempts = finals.c.attempts >= max_attempts(finals)
        return self._end_lease(finals, final_record, final_id, owner, dict(
            status=case((out_of_attempts, FinalStatus.FAILED.value), else_=Q), error=clean_message(error),
            finished_at=case((out_of_attempts, now), else_=None)), now)

    def requeue_finals(self, search_id: int, owner: str | None = None, expired_before: float | None = None,
                       reason: str | None = None, lost: bool = True) -> int:
        """Re-queue finalize jobs as candidates are: those whose lease expired before a time (the attempt counts),
        or hand back those of ``owner`` (``reason``: why) or every leased one (not counted as attempts; ``lost=False``: handed back on purpose, not a lost lease either)."""
        now = self.clock()
        if owner is not None:
            why = reason or f"worker {owner!r} restarted while running it"
            return self._requeue(finals, search_id, finals.c.lease_owner == owner, now, lambda r: why, charged=False, lost=lost)
        if expired_before is not None:
            return self._requeue(finals, search_id, finals.c.lease_expires_at <= expired_before, now,
                                 lambda r: f"lease of {r.lease_owner!r} expired", charged=True)
        return self._requeue(finals, search_id, finals.c.lease_owner.is_not(None), now,
                             lambda r: f"the finalizer restarted while {r.lease_owner!r} held it", charged=False)

    def set_final_model(self, final_id: int, model_uri: str) -> FinalRecord:
        """Record where the final model was registered (an MLflow model URI), after it is done."""
        with self.db.write() as conn:
            conn.execute(finals.update().where(finals.c.id == final_id).values(model_uri=check_name(model_uri,
                                                                                                   "model uri")))
            row = conn.execute(select(finals).where(finals.c.id == final_id)).one_or_none()
        if row is None:
            raise NotFoundError(f"no final model with id {final_id!r}")
        return final_record(row)

    def get_final(self, final_id: int) -> FinalRecord:
        with self.db.read() as conn:
            row = conn.execute(select(finals).where(finals.c.id == final_id)).one_or_none()
        if row is None:
            raise NotFoundError(f"no final model with id {final_id!r}")
        return final_record(row)

    def finals(self, search_id: int, status: FinalStatus | str | None = None) -> tuple[FinalRecord, ...]:
        """The search's finalize jobs and final models, in the order they were queued."""
        query = select(finals).where(finals.c.search_id == search_id)
        if status is not None:
            query = query.where(finals.c.status == FinalStatus(status).value)
        with self.db.read() as conn:
            self._search_row(conn, search_id)
            return tuple(final_record(r) for r in conn.execute(query.order_by(finals.c.id)))

