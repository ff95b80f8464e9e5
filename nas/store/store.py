"""The search store: supernets, searches, candidates and final models in SQL.

With ``engine.py`` (connections) and ``schema.py`` (DDL), the only code in ganas that talks SQL.

Contract (every backend passes ``tests/nas/store_conformance.py``): thread-safe; every read
returns immutable records; a config is stored at most once per search; a candidate is leased
to at most one owner at a time and only that owner can complete it (finalize jobs likewise); a
search is driven by at most one live orchestrator. Times come from ``clock`` (Unix seconds) so tests can move time.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import JSON, case, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import OperationalError

from foundation.errors import clean_message

from ..fields import INT32_MAX, shown
from .engine import Database
from .errors import (DuplicateNameError, InvalidValueError, LeaseError, NotFoundError, SearchBusyError,
                     StateTransitionError, UnreadableRowError)
from .final_jobs import FinalJobs
from .paging import CandidatePage, CandidateQuery
from .models import (SCHEMA_VERSION, candidate_record, candidates, finals, json_problem, max_attempts, search_record,
                     searches, supernet_record, supernets)
from .records import (LOST_LEASES_LIMIT, SEARCH_TRANSITIONS, AddResult, CandidateCounts, CandidateRecord,
                      CandidateStatus, Listing, NewCandidate, Objective, SearchRecord, SearchState, SupernetRecord,
                      UnreadableRow, candidate_status, check_count, check_json, check_metrics, check_name, check_plan,
                      check_seconds, check_sha256, search_state)
from .schema import check_readable, ensure_schema

Q, LEASED = CandidateStatus.QUEUED.value, CandidateStatus.LEASED.value
_CHUNK = 500  # configs per IN (...) list, well under every backend's bound-parameter limit
# INSERT ... that skips a config already present (a concurrent add on PostgreSQL); others serialise writes
_INSERT_IGNORING = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _ago(seconds: float) -> str:
    return f"{abs(seconds):.0f} s {'from now' if seconds >= 0 else 'ago'}"


def is_id(value: Any) -> bool:
    """Whether ``value`` can be a row id (the id columns are 32-bit integers): any other is found nowhere."""
    return isinstance(value, int) and not isinstance(value, bool) and -INT32_MAX <= value <= INT32_MAX


def _listing(conn: Connection, query: Any, id_column: Any, to_record: Callable[[Row], Any], table: str) -> Listing:
    """The records ``query`` selects; a row that cannot be read is left out and reported, never fatal to the rest."""
    unreadable: list[UnreadableRow] = []
    try:
        rows = conn.execute(query).all()
    except ValueError:  # a JSON column that does not parse: read the rows one at a time to find it
        rows = []
        for row_id in conn.execute(query.with_only_columns(id_column)).scalars().all():
            try:
                rows.append(conn.execute(query.where(id_column == row_id)).one())
            except ValueError as problem:
                unreadable.append(UnreadableRow(table, row_id, json_problem(problem)))
    records = []
    for row in rows:
        try:
            records.append(to_record(row))
        except UnreadableRowError as exc:
            unreadable.append(exc.row)
    return Listing(tuple(records), tuple(sorted(unreadable, key=lambda u: u.id)))


def _one(conn: Connection, query: Any, table: str, row_id: int) -> Row | None:
    """The row ``query`` selects, or None; :class:`UnreadableRowError` when a JSON column of it does not parse."""
    try:
        return conn.execute(query).one_or_none()
    except ValueError as exc:
        raise UnreadableRowError(UnreadableRow(table, row_id, json_problem(exc))) from None


class Store(FinalJobs):
    """Supernets, searches, candidates and final models in one SQL database (SQLite or any SQLAlchemy URL).

    An orchestrator's loop (``nas.orchestrator``): ``claim_search`` (then ``heartbeat``
    regularly); at start ``requeue_owner`` for each of its workers (a restarted worker gets its own
    unfinished candidates back first) and ``requeue_leased`` for workers it no longer has;
    ``add_candidates`` for the strategy's proposals (existing configs come back with their
    results), ``lease_candidates`` per idle worker, ``complete_candidate`` / ``fail_candidate``
    with each worker's outcome, and ``requeue_expired`` once the store's clock passes a lease's
    expiry (a hung worker). ``candidates`` replays the search in proposal order. Finalize jobs
    (``add_finals``, ``lease_finals``, ``complete_final``, ``fail_final``, ``requeue_finals``)
    follow the same lease rules.

    What counts as an attempt: a lease counts while it runs and stays counted when the evaluation
    failed (``fail_candidate``) or ran past its lease (``requeue_expired``); a lease handed back because
    its worker or the orchestrator died, or stopped (``requeue_owner``, ``requeue_leased``), is given
    back and counted in ``lost`` instead, up to :data:`LOST_LEASES_LIMIT`.
    """

    def __init__(self, url: str | os.PathLike, *, clock: Callable[[], float] = time.time,
                 busy_timeout_s: float = 30.0, read_only: bool = False):
        """``read_only``: never write, not even the schema (an outdated one is reported, not migrated); for
        listing a workspace or database this process may not (or should not) change."""
        self.db = Database(url, busy_timeout_s=busy_timeout_s, read_only=read_only)
        self.clock = clock
        try:
            (check_readable if read_only else ensure_schema)(self.db)
        except OperationalError as exc:  # e.g. SQLite's "attempt to write a readonly database"
            self.db.dispose()
            raise self.db.cannot_open(exc) from None
        except BaseException:
            self.db.dispose()
            raise

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The full URL, e.g. for Optuna's RDBStorage on the same database."""
        return self.db.url.render_as_string(hide_password=False)

    @property
    def schema_version(self) -> int:
        return SCHEMA_VERSION

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.db.safe_url!r})"

    # -- supernets ------------------------------------------------------------------------------
    def register_supernet(self, name: str, *, architecture: str, space: str, checkpoint: str,
                          checkpoint_sha256: str, hparams: Mapping[str, Any] | None = None,
                          dataset: Mapping[str, Any] | None = None, metrics: Sequence[str] = (),
                          teacher: Mapping[str, Any] | None = None) -> SupernetRecord:
        """Register a trained supernet; registering the same name with the same weights returns it again.

        ``teacher``: the generator it was distilled from (``nas.teacher.TeacherInfo`` as a dict); a
        repeated registration may add or replace it."""
        metrics = (metrics,) if isinstance(metrics, str) else metrics
        values = dict(name=check_name(name, "supernet name"), architecture=check_name(architecture, "architecture"),
                      space=check_name(space, "search space"), checkpoint=str(checkpoint),
                      checkpoint_sha256=check_sha256(checkpoint_sha256),
                      hparams=check_json(dict(hparams or {}), "hparams"),
                      dataset=check_json(dict(dataset or {}), "dataset"),
                      metrics=[check_name(m, "metric name") for m in metrics],
                      teacher=check_json(dict(teacher), "teacher") if teacher is not None else None)
        if not values["checkpoint"]:
            raise InvalidValueError("checkpoint location must not be empty")
        with self.db.write() as conn:
            row = conn.execute(select(supernets).where(supernets.c.name == name)).one_or_none()
            if row is not None:
                same = all(getattr(row, k) == values[k] for k in ("architecture", "space", "checkpoint_sha256",
                                                                   "hparams"))
                if not same:
                    raise DuplicateNameError(
                        f"supernet {name!r} is already registered ({row.architecture}, space {row.space}, checkpoint "
                        f"sha256 {row.checkpoint_sha256[:12]}...); choose another name")
                if values["teacher"] is not None and values["teacher"] != row.teacher:
                    conn.execute(supernets.update().where(supernets.c.id == row.id).values(teacher=values["teacher"]))
                    row = conn.execute(select(supernets).where(supernets.c.id == row.id)).one()
                return supernet_record(row)
            conn.execute(supernets.insert().values(created_at=self.clock(), **values))
            return supernet_record(conn.execute(select(supernets).where(supernets.c.name == name)).one())

    def get_supernet(self, name_or_id: str | int) -> SupernetRecord:
        with self.db.read() as conn:
            return supernet_record(self._supernet_row(conn, name_or_id))

    def list_supernets(self) -> tuple[SupernetRecord, ...]:
        """The readable supernets, oldest first (:meth:`supernet_listing` also reports the unreadable)."""
        return self.supernet_listing().records

    def supernet_listing(self) -> Listing[SupernetRecord]:
        """Every supernet, oldest first; a row that cannot be read is reported in ``unreadable`` instead."""
        with self.db.read() as conn:
            return _listing(conn, select(supernets).order_by(supernets.c.id), supernets.c.id, supernet_record,
                            "supernet")

    def _supernet_row(self, conn: Connection, name_or_id: str | int) -> Row:
        by_id = isinstance(name_or_id, int) and not isinstance(name_or_id, bool)
        column = supernets.c.id if by_id else supernets.c.name
        row = None
        if not by_id or is_id(name_or_id):
            row = _one(conn, select(supernets).where(column == name_or_id), "supernet", name_or_id)
        if row is None:
            known = conn.execute(select(supernets.c.name).order_by(supernets.c.id)).scalars().all()
            raise NotFoundError(f"no supernet {name_or_id!r}; registered: {', '.join(known) or 'none'} "
                                "(register one first)")
        return row

    # -- searches -------------------------------------------------------------------------------
    def create_search(self, supernet: str | int, *, budgets: Iterable[int], objectives: Iterable[Any],
                      strategy: str, trials: int, seed: int = 0, strategy_settings: Mapping[str, Any] | None = None,
                      max_attempts: int = 3, plan: Mapping[str, Any] | None = None) -> SearchRecord:
        """A new search in state ``created``. Budgets are MACs; objectives ``(metric, direction)``;
        ``strategy_settings`` the strategy's own; ``plan`` how the search runs, ``{"version": N, ...}``."""
        budgets = tuple(sorted({check_count(b, "MACs budget", 1) for b in budgets}))
        objectives = tuple(Objective.coerce(o) for o in objectives)
        if not objectives:
            raise InvalidValueError("a search needs at least one objective, e.g. ('fid', 'minimize')")
        if len({o.metric for o in objectives}) != len(objectives):
            raise InvalidValueError(f"objectives name a metric twice: {[o.metric for o in objectives]}")
        seed = check_count(seed, "seed", -2**63 + 1)
        now = self.clock()
        values = dict(budgets=list(budgets), objectives=[{"metric": o.metric, "direction": o.direction}
                                                         for o in objectives],
                      strategy=check_name(strategy, "strategy"), trials=check_count(trials, "trials", 1, INT32_MAX),
                      strategy_settings=check_json(dict(strategy_settings or {}), "strategy settings"),
                      plan=check_plan(dict(plan) if isinstance(plan, Mapping) else plan), seed=seed,
                      max_attempts=check_count(max_attempts, "max_attempts", 1, INT32_MAX),
                      state=SearchState.CREATED.value,
                      created_at=now, updated_at=now)
        with self.db.write() as conn:
            values["supernet_id"] = self._supernet_row(conn, supernet).id
            search_id = conn.execute(searches.insert().values(**values)).inserted_primary_key[0]
            return self._search(conn, search_id)

    def get_search(self, search_id: int) -> SearchRecord:
        with self.db.read() as conn:
            return self._search(conn, search_id)

    def list_searches(self, supernet: str | int | None = None,
                      state: SearchState | str | None = None) -> tuple[SearchRecord, ...]:
        """The readable searches, oldest first (:meth:`search_listing` also reports the unreadable)."""
        return self.search_listing(supernet, state).records

    def search_listing(self, supernet: str | int | None = None,
                       state: SearchState | str | None = None) -> Listing[SearchRecord]:
        """Searches, oldest first, optionally of one supernet and/or in one state; a row that cannot be read is
        reported in ``unreadable`` instead of taking the listing down."""
        query = _search_query().order_by(searches.c.id)
        with self.db.read() as conn:
            if supernet is not None:
                query = query.where(searches.c.supernet_id == self._supernet_row(conn, supernet).id)
            if state is not None:
                query = query.where(searches.c.state == search_state(state).value)
            return _listing(conn, query, searches.c.id, search_record, "search")

    def set_search_state(self, search_id: int, state: SearchState | str, error: str | None = None) -> SearchRecord:
        """Move a search along its lifecycle (:data:`SEARCH_TRANSITIONS`); ``error`` says why it failed."""
        new = search_state(state)
        with self.db.write() as conn:
            current = SearchState(self._search_row(conn, search_id, lock=True).state)
            if new != current and new not in SEARCH_TRANSITIONS[current]:
                allowed = ", ".join(sorted(s.value for s in SEARCH_TRANSITIONS[current])) or "none (it is final)"
                raise StateTransitionError(f"search {search_id} is {current.value} and cannot become {new.value}; "
                                           f"allowed next states: {allowed}")
            conn.execute(searches.update().where(searches.c.id == search_id)
                         .values(state=new.value, error=None if error is None else clean_message(error),
                                 updated_at=self.clock()))
            return self._search(conn, search_id)

    def claim_search(self, search_id: int, owner: str, ttl_seconds: float) -> SearchRecord:
        """Make ``owner`` the search's orchestrator until ``ttl_seconds`` from now (renew with heartbeat).

        Raises :class:`SearchBusyError` while another owner's claim is live; an expired one is taken over.
        """
        now, ttl = self.clock(), check_seconds(ttl_seconds, "ttl_seconds", positive=True)
        check_name(owner, "orchestrator owner")
        free = or_(searches.c.owner.is_(None), searches.c.owner == owner, searches.c.owner_expires_at <= now)
        return self._set_owner(search_id, owner, free, now, ttl)

    def heartbeat(self, search_id: int, owner: str, ttl_seconds: float) -> SearchRecord:
        """Extend ``owner``'s claim; raises :class:`SearchBusyError` if it was lost or released."""
        now, ttl = self.clock(), check_seconds(ttl_seconds, "ttl_seconds", positive=True)
        return self._set_owner(search_id, owner, searches.c.owner == owner, now, ttl)

    def release_search(self, search_id: int, owner: str) -> SearchRecord:
        """Give up ``owner``'s claim (no-op when it does not hold the search)."""
        with self.db.write() as conn:
            self._search_row(conn, search_id)
            conn.execute(searches.update().where(searches.c.id == search_id, searches.c.owner == owner)
                         .values(owner=None, heartbeat_at=None, owner_expires_at=None, updated_at=self.clock()))
            return self._search(conn, search_id)

    def set_search_teacher(self, search_id: int, metrics: Mapping[str, float], evaluator: str,
                           split: str) -> SearchRecord:
        """Record the teacher's figures on the search split, measured once with the search's own evaluator."""
        values = check_metrics(metrics)
        teacher = {"metrics": values, "evaluator": check_name(evaluator, "evaluator identity"),
                   "split": check_name(split, "split")}
        with self.db.write() as conn:
            self._search_row(conn, search_id)
            conn.execute(searches.update().where(searches.c.id == search_id).values(teacher=teacher,
                                                                                    updated_at=self.clock()))
            return self._search(conn, search_id)

    def _set_owner(self, search_id: int, owner: str, condition: Any, now: float, ttl: float) -> SearchRecord:
        with self.db.write() as conn:
            row = self._search_row(conn, search_id)
            done = conn.execute(searches.update().where(searches.c.id == search_id, condition)
                                .values(owner=owner, heartbeat_at=now, owner_expires_at=now + ttl, updated_at=now))
            if done.rowcount == 1:
                return self._search(conn, search_id)
        if row.owner is None or row.owner == owner:
            raise SearchBusyError(f"orchestrator {owner!r} does not hold search {search_id} any more (it was "
                                  f"released); resume it with `ganas search resume {search_id}`")
        raise SearchBusyError(
            f"search {search_id} is driven by orchestrator {row.owner!r} (claim expires "
            f"{_ago(row.owner_expires_at - now)}); stop it, or wait until its heartbeat lapses to take over")

    def _search_row(self, conn: Connection, search_id: int, lock: bool = False) -> Row:
        # only the scalar columns: a search whose JSON does not parse can still be found, changed and deleted
        query = select(*[c for c in searches.c if not isinstance(c.type, JSON)]).where(searches.c.id == search_id)
        row = conn.execute(query.with_for_update() if lock else query).one_or_none() if is_id(search_id) else None
        if row is None:
            raise NotFoundError(_no_search(search_id))
        return row

    def _search(self, conn: Connection, search_id: int) -> SearchRecord:
        row = _one(conn, _search_query().where(searches.c.id == search_id), "search", search_id) \
            if is_id(search_id) else None
        if row is None:
            raise NotFoundError(_no_search(search_id))
        return search_record(row)

    # -- candidates -----------------------------------------------------------------------------
    def add_candidates(self, search_id: int, items: Iterable[NewCandidate | tuple]) -> AddResult:
        """Add proposals; a config already in the search is not added again but returned as ``existing``."""
        items = [NewCandidate.coerce(i) for i in items]
        now = self.clock()
        with self.db.write() as conn:
            self._search_row(conn, search_id)
            before = self._by_config(conn, search_id, [i.config for i in items])
            next_order = conn.execute(select(func.max(candidates.c.order_index))
                                      .where(candidates.c.search_id == search_id)).scalar()
            next_order = 0 if next_order is None else next_order + 1
            rows, seen = [], set(before)
            for item in items:
                if item.config in seen:
                    continue
                seen.add(item.config)
                order = next_order if item.order is None else item.order
                next_order = max(next_order, order + 1)
                rows.append(dict(search_id=search_id, config=item.config, order_index=order, macs=item.macs,
                                 params=item.params, status=item.status.value, metrics={}, attempts=0, lost=0,
                                 error=item.reason, queued_at=now,
                                 finished_at=None if item.status == CandidateStatus.QUEUED else now))
            if rows:
                make_insert = _INSERT_IGNORING.get(self.db.dialect)
                statement = make_insert(candidates).on_conflict_do_nothing() if make_insert else insert(candidates)
                conn.execute(statement, rows)
            after = self._by_config(conn, search_id, [i.config for i in items])
        records = tuple(after[i.config] for i in items)
        added = {r["config"] for r in rows}
        return AddResult(records=records, added=tuple(r for r in after.values() if r.config in added),
                         existing=tuple(before.values()))

    def _by_config(self, conn: Connection, search_id: int, configs: Sequence[str]) -> dict[str, CandidateRecord]:
        found: dict[str, CandidateRecord] = {}
        unique = list(dict.fromkeys(configs))
        for start in range(0, len(unique), _CHUNK):
            query = _candidate_query().where(candidates.c.search_id == search_id,
                                             candidates.c.config.in_(unique[start:start + _CHUNK]))
            found.update((r.config, candidate_record(r)) for r in conn.execute(query))
        return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[1].id)))

    def lease_candidates(self, search_id: int, owner: str, n: int, ttl_seconds: float) -> tuple[CandidateRecord, ...]:
        """Lease up to ``n`` queued candidates to ``owner`` for ``ttl_seconds``, in proposal order.

        Candidates whose last lease was ``owner``'s come first (a restarted worker gets its own
        unfinished work back). Atomic: concurrent callers never receive the same candidate.
        """
        return self._lease(candidates, candidate_record, candidates.c.order_index, search_id, owner, n, ttl_seconds)

    def _lease(self, table: Any, to_record: Callable[[Row], Any], order: Any, search_id: int, owner: str, n: int,
               ttl_seconds: float) -> tuple:
        check_name(owner, "lease owner")
        n, ttl = check_count(n, "n"), check_seconds(ttl_seconds, "ttl_seconds", positive=True)
        now = self.clock()
        priority = (case((table.c.last_owner == owner, 0), else_=1), order, table.c.id)
        with self.db.write() as conn:
            self._search_row(conn, search_id)
            pick = (select(table.c.id).where(table.c.search_id == search_id, table.c.status == Q)
                    .order_by(*priority).limit(n))
            if self.db.supports_skip_locked:
                pick = pick.with_for_update(skip_locked=True)
            ids = conn.execute(pick).scalars().all()
            if not ids:
                return ()
            conn.execute(table.update().where(table.c.id.in_(ids), table.c.status == Q)
                         .values(status=LEASED, lease_owner=owner, lease_expires_at=now + ttl, leased_at=now,
                                 attempts=table.c.attempts + 1))
            rows = conn.execute(select(table).where(table.c.id.in_(ids), table.c.lease_owner == owner,
                                                    table.c.status == LEASED).order_by(*priority))
            return tuple(to_record(r) for r in rows)

    def complete_candidate(self, candidate_id: int, owner: str, metrics: Mapping[str, float], evaluator: str,
                           seconds: float) -> CandidateRecord:
        """Record ``owner``'s evaluation: done with ``metrics`` (over-budget configs are added infeasible instead).

        Only the current lease holder may complete (its lease may have lapsed as long as no one
        re-queued it); a late result from a lease that was re-queued is refused with LeaseError.
        """
        values = check_metrics(metrics)
        return self._end_lease(candidates, candidate_record, candidate_id, owner, dict(
            status=CandidateStatus.DONE.value, metrics=values, evaluator=check_name(evaluator, "evaluator identity"),
            eval_seconds=check_seconds(seconds, "seconds"), error=None))

    def fail_candidate(self, candidate_id: int, owner: str, error: str) -> CandidateRecord:
        """``owner``'s evaluation failed: re-queue while attempts remain, else mark failed with ``error``."""
        now = self.clock()
        out_of_attempts = candidates.c.attempts >= max_attempts(candidates)
        return self._end_lease(candidates, candidate_record, candidate_id, owner, dict(
            status=case((out_of_attempts, CandidateStatus.FAILED.value), else_=Q), error=clean_message(error),
            finished_at=case((out_of_attempts, now), else_=None)), now)

    def _end_lease(self, table: Any, to_record: Callable[[Row], Any], item_id: int, owner: str, values: dict,
                   now: float | None = None) -> Any:
        now = self.clock() if now is None else now
        values = {"finished_at": now, **values, "lease_owner": None, "lease_expires_at": None, "last_owner": owner}
        with self.db.write() as conn:
            updated = conn.execute(table.update().where(table.c.id == item_id, table.c.status == LEASED,
                                                        table.c.lease_owner == owner).values(**values))
            row = conn.execute(select(table).where(table.c.id == item_id)).one_or_none()
        what = "final model" if table is finals else "candidate"
        if row is None:
            raise NotFoundError(f"no {what} with id {item_id!r}")
        if updated.rowcount == 1:
            return to_record(row)
        if row.status == LEASED:
            raise LeaseError(f"{what} {item_id} ({row.config}) is leased to {row.lease_owner!r}, not "
                             f"{owner!r}: that lease expired and was re-queued; discard this result")
        raise LeaseError(f"{what} {item_id} ({row.config}) is {row.status}, not leased to {owner!r} (its "
                         "lease expired and it was re-queued or finished); discard this result")

    def requeue_expired(self, search_id: int, now: float | None = None) -> int:
        """Re-queue leases that expired before ``now`` (a hung evaluation: the attempt counts, failed once out of
        attempts); returns how many."""
        now = self.clock() if now is None else now
        return self._requeue(candidates, search_id, candidates.c.lease_expires_at <= now, now,
                             lambda r: f"lease of {r.lease_owner!r} expired {_ago(r.lease_expires_at - now)}",
                             charged=True)

    def requeue_owner(self, search_id: int, owner: str, reason: str | None = None, lost: bool = True) -> int:
        """Hand back every lease held by ``owner`` (its worker died or was restarted, or its orchestrator
        stopped), not counted as an attempt; returns how many. ``reason`` is recorded as the last error.
        ``lost=False``: handed back on purpose (cancel, pause, SIGTERM), not counted as a lost lease either.

        They return to the queue ahead of others for ``owner``'s next :meth:`lease_candidates`.
        """
        why = reason or f"worker {owner!r} restarted while evaluating it"
        return self._requeue(candidates, search_id, candidates.c.lease_owner == owner, self.clock(),
                             lambda r: why, charged=False, lost=lost)

    def requeue_leased(self, search_id: int) -> int:
        """Hand back every lease of the search (a restarted orchestrator whose workers are gone), not counted as
        attempts."""
        return self._requeue(candidates, search_id, candidates.c.lease_owner.is_not(None), self.clock(),
                             lambda r: f"the orchestrator restarted while {r.lease_owner!r} held it", charged=False)

    def _requeue(self, table: Any, search_id: int, condition: Any, now: float, reason: Callable[[Row], str],
                 charged: bool, lost: bool = True) -> int:
        """End the matching leases: back to the queue, or failed for good once out of attempts (``charged``) or
        out of lost leases (not charged: the attempt the lease counted is given back; ``lost``: and the lease
        counts as lost, unless it was handed back on purpose)."""
        order = table.c.order_index if table is candidates else table.c.id
        with self.db.write() as conn:
            limit = self._search_row(conn, search_id).max_attempts
            pick = select(table).where(table.c.search_id == search_id, table.c.status == LEASED,
                                       condition).order_by(order, table.c.id)
            if self.db.supports_skip_locked:
                pick = pick.with_for_update(skip_locked=True)
            count = 0
            for row in conn.execute(pick).all():
                attempts = row.attempts if charged else max(row.attempts - 1, 0)
                lost_count = row.lost + (0 if charged or not lost else 1)
                exhausted = attempts >= limit if charged else lost and lost_count >= LOST_LEASES_LIMIT
                text = clean_message(f"{reason(row)} ({_lease_note(attempts, limit, lost_count, charged, exhausted, lost)})")
                count += conn.execute(table.update().where(table.c.id == row.id, table.c.status == LEASED).values(
                    status=CandidateStatus.FAILED.value if exhausted else Q, error=text, lease_owner=None,
                    lease_expires_at=None, last_owner=row.lease_owner, finished_at=now if exhausted else None,
                    attempts=attempts, lost=lost_count)).rowcount
            return count

    def get_candidate(self, candidate_id: int) -> CandidateRecord:
        with self.db.read() as conn:
            row = conn.execute(_candidate_query().where(candidates.c.id == candidate_id)).one_or_none() \
                if is_id(candidate_id) else None
        if row is None:
            raise NotFoundError(f"no candidate with id {candidate_id!r}")
        return candidate_record(row)

    def find_candidate(self, search_id: int, config: str) -> CandidateRecord | None:
        with self.db.read() as conn:
            return self._by_config(conn, search_id, [config]).get(config)

    def candidates(self, search_id: int, status: CandidateStatus | str | None = None) -> tuple[CandidateRecord, ...]:
        """The search's candidates in proposal order (``order``, then id): a deterministic replay."""
        query = _candidate_query().where(candidates.c.search_id == search_id)
        if status is not None:
            query = query.where(candidates.c.status == candidate_status(status).value)
        with self.db.read() as conn:
            self._search_row(conn, search_id)
            return tuple(candidate_record(r) for r in conn.execute(query.order_by(candidates.c.order_index,
                                                                            candidates.c.id)))

    def candidate_page(self, search_id: int, query: CandidateQuery = CandidateQuery(), offset: int = 0,
                       limit: int | None = None) -> CandidatePage:
        """The candidates ``query`` selects, sorted and paged by the database (``limit`` None: all from ``offset``)."""
        offset = check_count(offset, "offset")
        if limit is not None:
            limit = check_count(limit, "limit")
        with self.db.read() as conn:
            self._search_row(conn, search_id)
            total = conn.execute(query.where(select(func.count()).select_from(candidates), search_id)).scalar_one()
            rows = conn.execute(query.order(query.where(_candidate_query(), search_id)).offset(offset).limit(limit))
            return CandidatePage(total, offset, limit, tuple(candidate_record(r) for r in rows))

    def count_candidates(self, search_id: int) -> CandidateCounts:
        with self.db.read() as conn:
            self._search_row(conn, search_id)
            rows = conn.execute(select(candidates.c.status, func.count()).where(candidates.c.search_id == search_id)
                                .group_by(candidates.c.status)).all()
        return CandidateCounts(**{status: count for status, count in rows})



def _no_search(search_id: Any) -> str:
    return f"no search with id {shown(search_id)} (`ganas search list` lists them)"


def _lease_note(attempts: int, limit: int, lost: int, charged: bool, exhausted: bool, counted_lost: bool) -> str:
    if charged:
        return f"attempt {attempts} of {limit}"
    if not counted_lost:
        return "handed back; not counted as an attempt"
    if exhausted:
        return (f"{lost} leases lost to dead workers or orchestrators: given up, as a config that kills its worker "
                "would be retried forever")
    return f"not counted as an attempt; lost lease {lost} of {LOST_LEASES_LIMIT}"


def _search_query():
    return select(searches, supernets.c.name.label("supernet_name")).join(
        supernets, supernets.c.id == searches.c.supernet_id)


def _candidate_query():
    return select(candidates)
