"""The store's tables (SQLAlchemy 2.x declarative). Schema version :data:`SCHEMA_VERSION`.

Every table is prefixed ``ganas_`` so Optuna's RDB storage (``studies``, ``trials``,
``alembic_version``, ...) can live in the same database. Times are Unix seconds (DOUBLE): they
compare the same way on every backend and need no time-zone handling. Constraints carry
explicit names (a naming convention) so that migrations can refer to them.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (JSON, BigInteger, CheckConstraint, Double, ForeignKey, Index, Integer, MetaData,
                        String, Text, UniqueConstraint)
from sqlalchemy.engine import Row
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .records import (MAX_CONFIG_LENGTH, MAX_NAME_LENGTH, CandidateRecord, CandidateStatus, FinalRecord, FinalStatus,
                      Objective, SearchRecord, SearchState, SupernetRecord, freeze)

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
    return SupernetRecord(id=m["id"], name=m["name"], architecture=m["architecture"], hparams=freeze(m["hparams"]),
                          space=m["space"], checkpoint=m["checkpoint"], checkpoint_sha256=m["checkpoint_sha256"],
                          dataset=freeze(m["dataset"]), metrics=tuple(m["metrics"]), created_at=m["created_at"],
                          teacher=freeze(m["teacher"]))


def search_record(row: Row) -> SearchRecord:
    m = row._mapping
    return SearchRecord(
        id=m["id"], supernet_id=m["supernet_id"], supernet=m["supernet_name"], budgets=tuple(m["budgets"]),
        objectives=tuple(Objective(o["metric"], o["direction"]) for o in m["objectives"]), strategy=m["strategy"],
        strategy_settings=freeze(m["strategy_settings"]), plan=freeze(m["plan"]), seed=m["seed"], trials=m["trials"],
        max_attempts=m["max_attempts"], state=SearchState(m["state"]), error=m["error"], owner=m["owner"],
        heartbeat_at=m["heartbeat_at"], owner_expires_at=m["owner_expires_at"], created_at=m["created_at"],
        updated_at=m["updated_at"], teacher=freeze(m["teacher"]))


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
