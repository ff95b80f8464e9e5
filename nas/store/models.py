"""The store's tables (SQLAlchemy 2.x declarative). Schema version :data:`SCHEMA_VERSION`.

Every table is prefixed ``ganas_`` so Optuna's RDB storage (``studies``, ``trials``,
``alembic_version``, ...) can live in the same database. Times are Unix seconds (DOUBLE): they
compare the same way on every backend and need no time-zone handling. Constraints carry
explicit names (a naming convention) so that migrations can refer to them.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import (JSON, BigInteger, CheckConstraint, Double, ForeignKey, Index, Integer, MetaData,
                        String, Text, UniqueConstraint)
from sqlalchemy.engine import Row
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from foundation.errors import GanasError

from ..fields import INT32_MAX, INT64_MAX, shown
from .errors import UnreadableRowError
from .records import (MAX_CONFIG_LENGTH, MAX_NAME_LENGTH, CandidateRecord, CandidateStatus, FinalRecord, FinalStatus,
                      Objective, SearchRecord, SearchState, SupernetRecord, UnreadableRow, freeze)

SCHEMA_VERSION = 3  # 2: the searches' plan column; 3: teachers, finals (see schema.py's migrations)
TABLE_PREFIX = "ganas_"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _one_of(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class MetaRow(Base):
    """Key/value facts about the database itself; ``schema_version`` is the one that matters."""

    __tablename__ = "ganas_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class SupernetRow(Base):
    __tablename__ = "ganas_supernets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), unique=True)
    architecture: Mapped[str] = mapped_column(String(64))
    hparams: Mapped[dict] = mapped_column(JSON)
    space: Mapped[str] = mapped_column(String(128))
    checkpoint: Mapped[str] = mapped_column(Text)
    checkpoint_sha256: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[dict] = mapped_column(JSON)
    metrics: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Double)
    teacher: Mapped[dict | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class SearchRow(Base):
    __tablename__ = "ganas_searches"
    __table_args__ = (
        CheckConstraint(_one_of("state", SearchState), name="state"),
        Index(None, "supernet_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    supernet_id: Mapped[int] = mapped_column(ForeignKey("ganas_supernets.id", ondelete="RESTRICT"))
    budgets: Mapped[list] = mapped_column(JSON)  # MACs, ascending
    objectives: Mapped[list] = mapped_column(JSON)  # [{"metric": ..., "direction": ...}]
    strategy: Mapped[str] = mapped_column(String(64))
    strategy_settings: Mapped[dict] = mapped_column(JSON)
    plan: Mapped[dict | None] = mapped_column(JSON(none_as_null=True), nullable=True)  # {"version": N, ...}
    seed: Mapped[int] = mapped_column(BigInteger)
    trials: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(MAX_NAME_LENGTH), nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    owner_expires_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)
    teacher: Mapped[dict | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class CandidateRow(Base):
    __tablename__ = "ganas_candidates"
    __table_args__ = (
        # a config is never evaluated twice in one search
        UniqueConstraint("search_id", "config"),
        CheckConstraint(_one_of("status", CandidateStatus), name="status"),
        # the lease query: queued candidates of a search in proposal order
        Index(None, "search_id", "status", "order_index"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("ganas_searches.id", ondelete="CASCADE"))
    config: Mapped[str] = mapped_column(String(MAX_CONFIG_LENGTH))
    order_index: Mapped[int] = mapped_column(Integer)
    macs: Mapped[int] = mapped_column(BigInteger)
    params: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict] = mapped_column(JSON)
    evaluator: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(MAX_NAME_LENGTH), nullable=True)
    lease_expires_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    last_owner: Mapped[str | None] = mapped_column(String(MAX_NAME_LENGTH), nullable=True)
    queued_at: Mapped[float] = mapped_column(Double)
    leased_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    eval_seconds: Mapped[float | None] = mapped_column(Double, nullable=True)


class FinalRow(Base):
    __tablename__ = "ganas_finals"
    __table_args__ = (
        UniqueConstraint("search_id", "config"),  # one final model per config of a search
        CheckConstraint(_one_of("status", FinalStatus), name="status"),
        Index(None, "search_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("ganas_searches.id", ondelete="CASCADE"))
    config: Mapped[str] = mapped_column(String(MAX_CONFIG_LENGTH))
    budget: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    steps: Mapped[int] = mapped_column(Integer)
    settings: Mapped[dict] = mapped_column(JSON)
    macs: Mapped[int] = mapped_column(BigInteger)
    params: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    before: Mapped[dict] = mapped_column(JSON)
    after: Mapped[dict] = mapped_column(JSON)
    teacher: Mapped[dict] = mapped_column(JSON)
    evaluator: Mapped[str | None] = mapped_column(Text, nullable=True)
    split: Mapped[str | None] = mapped_column(String(32), nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Double, nullable=True)
    teacher_latency_ms: Mapped[float | None] = mapped_column(Double, nullable=True)
    files: Mapped[dict] = mapped_column(JSON)
    export_errors: Mapped[dict] = mapped_column(JSON)
    model_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(MAX_NAME_LENGTH), nullable=True)
    lease_expires_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    last_owner: Mapped[str | None] = mapped_column(String(MAX_NAME_LENGTH), nullable=True)
    created_at: Mapped[float] = mapped_column(Double)
    leased_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    seconds: Mapped[float | None] = mapped_column(Double, nullable=True)


supernets = SupernetRow.__table__
searches = SearchRow.__table__
candidates = CandidateRow.__table__
finals = FinalRow.__table__
meta = MetaRow.__table__


def max_attempts(table: Any):
    """The attempts a search allows, as a correlated subquery for rows of ``table`` (candidates, finals)."""
    from sqlalchemy import select

    return select(searches.c.max_attempts).where(searches.c.id == table.c.search_id).scalar_subquery()


# -- rows to immutable records (a search row is joined with its supernet's name) -----------------
def supernet_record(row: Row) -> SupernetRecord:
    m = row._mapping
    with _readable("supernet", m["id"]):
        return SupernetRecord(
            id=m["id"], name=_text(m["name"], "name"), architecture=_text(m["architecture"], "architecture"),
            hparams=freeze(_object(m["hparams"], "hparams")), space=_text(m["space"], "space"),
            checkpoint=_text(m["checkpoint"], "checkpoint"), checkpoint_sha256=m["checkpoint_sha256"],
            dataset=freeze(_object(m["dataset"], "dataset")),
            metrics=tuple(_text(x, "metrics") for x in _list(m["metrics"], "metrics")),
            created_at=_time(m["created_at"], "created_at"), teacher=freeze(_teacher(m["teacher"])))


def search_record(row: Row) -> SearchRecord:
    """The search of a row, its values checked: a row the store could not have written (by hand, or from a ganas
    that checked less) raises :class:`UnreadableRowError` instead of a record that breaks its readers."""
    m = row._mapping
    with _readable("search", m["id"]):
        return SearchRecord(
            id=m["id"], supernet_id=m["supernet_id"], supernet=m["supernet_name"],
            budgets=tuple(_whole(b, "budgets", 1, INT64_MAX) for b in _list(m["budgets"], "budgets")),
            objectives=tuple(Objective.coerce(o) for o in _list(m["objectives"], "objectives", minimum=1)),
            strategy=_text(m["strategy"], "strategy"),
            strategy_settings=freeze(_object(m["strategy_settings"], "strategy_settings")),
            plan=freeze(_object(m["plan"], "plan", optional=True)),
            seed=_whole(m["seed"], "seed", -INT64_MAX, INT64_MAX),
            trials=_whole(m["trials"], "trials", 1, INT32_MAX),
            max_attempts=_whole(m["max_attempts"], "max_attempts", 1, INT32_MAX), state=SearchState(m["state"]),
            error=m["error"], owner=m["owner"], heartbeat_at=_time(m["heartbeat_at"], "heartbeat_at", optional=True),
            owner_expires_at=_time(m["owner_expires_at"], "owner_expires_at", optional=True),
            created_at=_time(m["created_at"], "created_at"), updated_at=_time(m["updated_at"], "updated_at"),
            teacher=freeze(_object(m["teacher"], "teacher", optional=True)))


@contextmanager
def _readable(table: str, row_id: Any) -> Iterator[None]:
    try:
        yield
    except UnreadableRowError:
        raise
    except (GanasError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise UnreadableRowError(UnreadableRow(table, row_id, str(exc) or type(exc).__name__)) from None


def _whole(value: Any, column: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{column} holds {shown(value)}, not an integer from {low:,} to {high:,}")
    return value


def _time(value: Any, column: str, optional: bool = False) -> float | None:
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{column} holds {shown(value)}, not a time in seconds")
    return value


def _teacher(value: Any) -> dict | None:
    """A supernet's teacher: an object whose MACs and parameter counts are whole numbers (they are printed)."""
    teacher = _object(value, "teacher", optional=True)
    for key in ("macs", "params"):
        if teacher and key in teacher:
            _whole(teacher[key], f"teacher {key}", 0, INT64_MAX)
    return teacher


def _text(value: Any, column: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{column} holds {shown(value)}, not a text")
    return value


def _list(value: Any, column: str, minimum: int = 0) -> list:
    if not isinstance(value, list) or len(value) < minimum:
        raise ValueError(f"{column} holds {shown(value)}, not a list" + (f" of at least {minimum}" if minimum else ""))
    return value


def _object(value: Any, column: str, optional: bool = False) -> dict | None:
    if not (isinstance(value, dict) or (optional and value is None)):
        raise ValueError(f"{column} holds {shown(value)}, not a JSON object")
    return value


def json_problem(exc: ValueError) -> str:
    """Why a row's JSON column could not even be parsed (SQLite keeps any text in one)."""
    return f"a JSON column holds text that is not JSON ({exc})"


def candidate_record(row: Row) -> CandidateRecord:
    m = row._mapping
    return CandidateRecord(
        id=m["id"], search_id=m["search_id"], config=m["config"], order=m["order_index"], macs=m["macs"],
        params=m["params"], status=CandidateStatus(m["status"]), metrics=freeze(m["metrics"]),
        evaluator=m["evaluator"], error=m["error"], attempts=m["attempts"], lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"], last_owner=m["last_owner"], queued_at=m["queued_at"],
        leased_at=m["leased_at"], finished_at=m["finished_at"], eval_seconds=m["eval_seconds"])


def final_record(row: Row) -> FinalRecord:
    m = row._mapping
    return FinalRecord(
        id=m["id"], search_id=m["search_id"], config=m["config"], budget=m["budget"], steps=m["steps"],
        settings=freeze(m["settings"]), macs=m["macs"], params=m["params"], status=FinalStatus(m["status"]),
        before=freeze(m["before"]), after=freeze(m["after"]), teacher=freeze(m["teacher"]), evaluator=m["evaluator"],
        split=m["split"], latency_ms=m["latency_ms"], teacher_latency_ms=m["teacher_latency_ms"],
        files=freeze(m["files"]), export_errors=freeze(m["export_errors"]), model_uri=m["model_uri"],
        error=m["error"], attempts=m["attempts"], lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"], last_owner=m["last_owner"], created_at=m["created_at"],
        leased_at=m["leased_at"], finished_at=m["finished_at"], seconds=m["seconds"])
