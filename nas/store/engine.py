"""Connecting to the store's database: URL handling, per-backend set-up, read and write transactions.

SQLite (the default, one file in the workspace) gets WAL journaling (readers never wait for the
writer), a busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` for write transactions: the write
lock is taken at the start, so read-then-write sequences such as leasing are atomic between
processes and never fail half-way with "database is locked". Other backends (PostgreSQL) use
row locks (``SELECT ... FOR UPDATE SKIP LOCKED``) in the store and an advisory lock for schema
changes. An in-memory SQLite database is one shared connection, serialised by a lock.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import StaticPool

from .errors import StoreConnectionError, StoreUrlError

_WRITE = "ganas_write"
SCHEMA_LOCK_KEY = 0x67616E6173  # "ganas": the PostgreSQL advisory lock held while creating/migrating


def as_url(path_or_url: str | os.PathLike) -> URL:
    """Parse a SQLAlchemy URL; a value without ``://`` is a SQLite file path."""
    text_value = os.fspath(path_or_url)
    if "://" not in text_value:
        return URL.create("sqlite", database=str(Path(text_value).expanduser()))
    try:
        return make_url(text_value)
    except (ArgumentError, ValueError) as exc:
        raise StoreUrlError(f"{text_value!r} is not a database URL ({exc}); use e.g. sqlite:///ganas.db or "
                            "postgresql+psycopg2://user:password@host/dbname") from None


def _sqlite_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


@dataclass(frozen=True)
class _Backend:
    """What differs between database backends (a registry keyed by SQLAlchemy backend name)."""

    engine_kwargs: Callable[[URL], dict]
    on_connect: Callable[[object, float], None] | None  # per DBAPI connection
    prepare: Callable[[object], None] | None  # once per database, on a DBAPI connection, no transaction
    lock_schema: Callable[[Connection], None] | None  # inside the schema transaction
    begin: Callable[[Connection], None] | None = None  # emits BEGIN when the driver's own is disabled


def _sqlite_kwargs(url: URL) -> dict:
    if _sqlite_memory(url):
        return {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return {}


def _sqlite_on_connect(dbapi_connection, busy_timeout_s: float) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_prepare(dbapi_connection) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")  # persistent in the file; "memory" in memory
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _postgresql_lock(conn: Connection) -> None:
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})


BACKENDS: dict[str, _Backend] = {
    "sqlite": _Backend(_sqlite_kwargs, _sqlite_on_connect, _sqlite_prepare, None, _sqlite_begin),
    "postgresql": _Backend(lambda url: {"pool_pre_ping": True}, None, None, _postgresql_lock),
}
_GENERIC = _Backend(lambda url: {"pool_pre_ping": True}, None, None, None)


class Database:
    """An engine plus the transaction discipline the store relies on. Thread-safe."""

    def __init__(self, path_or_url: str | os.PathLike, busy_timeout_s: float = 30.0):
        self.url = as_url(path_or_url)
        self.backend = BACKENDS.get(self.url.get_backend_name(), _GENERIC)
        try:
            self.engine: Engine = create_engine(self.url, **self.backend.engine_kwargs(self.url))
        except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
            raise StoreUrlError(f"no driver for {self.safe_url} ({exc}); install it (e.g. psycopg2-binary for "
                                "postgresql+psycopg2://) or use a sqlite:/// URL") from None
        except (ArgumentError, OSError) as exc:
            raise StoreUrlError(f"cannot use {self.safe_url}: {exc}") from None
        self._lock = threading.RLock() if _sqlite_memory(self.url) else nullcontext()
        if self.backend.on_connect is not None:
            on_connect = self.backend.on_connect
            event.listen(self.engine, "connect", lambda dbapi, record: on_connect(dbapi, busy_timeout_s))
        if self.backend.begin is not None:
            event.listen(self.engine, "begin", self.backend.begin)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def safe_url(self) -> str:
        """The URL with its password masked, for messages."""
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Connection]:
        with self._lock:
            try:
                conn = self.engine.connect()
            except OperationalError as exc:
                raise StoreConnectionError(f"cannot open the store at {self.safe_url}: {exc.orig}") from None
            with conn:
                if write:
                    conn = conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    yield conn

    def read(self):
        """A read transaction (a consistent snapshot; never blocks the writer on SQLite WAL)."""
        return self._transaction(write=False)

    def write(self):
        """A write transaction, committed on exit and rolled back on error."""
        return self._transaction(write=True)

    def prepare(self) -> None:
        """Persistent per-database settings (SQLite: WAL), applied once the schema is known to be ours."""
        if self.backend.prepare is None:
            return
        with self._lock:
            raw = self.engine.raw_connection()  # outside any transaction (on_connect disabled BEGIN)
            try:
                self.backend.prepare(raw.dbapi_connection)
            finally:
                raw.close()

    def lock_schema(self, conn: Connection) -> None:
        """Serialise schema creation/migration between processes (SQLite: BEGIN IMMEDIATE already does)."""
        if self.backend.lock_schema is not None:
            self.backend.lock_schema(conn)

    @property
    def supports_skip_locked(self) -> bool:
        return self.dialect in ("postgresql", "mysql", "mariadb", "oracle")

    def dispose(self) -> None:
        self.engine.dispose()


DEFAULT_FILENAME = "ganas.db"


def workspace_url(workspace: str | os.PathLike) -> str:
    """The default store of a workspace: a SQLite file ``ganas.db`` inside it."""
    path = Path(workspace).expanduser().resolve() / DEFAULT_FILENAME
    return URL.create("sqlite", database=str(path)).render_as_string()
