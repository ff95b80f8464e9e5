"""Connecting to the store's database: URL handling, per-backend set-up, read and write transactions.

SQLite (the default, one file in the workspace) gets WAL journaling (readers never wait for the
writer), a busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` for write transactions: the write
lock is taken at the start, so read-then-write sequences such as leasing are atomic between
processes and never fail half-way with "database is locked". Other backends (PostgreSQL) use
row locks (``SELECT ... FOR UPDATE SKIP LOCKED``) in the store and an advisory lock for schema
changes. An in-memory SQLite database is one shared connection, serialised by a lock.

A database opened ``read_only`` (what the CLI's read commands use) never writes: SQLite files are
opened with ``mode=ro`` (and nothing is created, not even the folder), PostgreSQL sessions are
read-only, and :meth:`Database.write` refuses.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import StaticPool

from .errors import ReadOnlyStoreError, StoreConnectionError, StoreUrlError

_WRITE = "ganas_write"
CONNECT_TIMEOUT_S = 10  # a server that does not answer is reported after this, not after the OS's minutes
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


def absolute_url(path_or_url: str | os.PathLike) -> str:
    """The URL as text, a SQLite file's path made absolute (a process started in another folder opens the same
    file); raises :class:`StoreUrlError` for a malformed URL."""
    url = as_url(path_or_url)
    if url.get_backend_name() == "sqlite" and not _sqlite_memory(url) and not url.database.startswith("file:"):
        url = url.set(database=str(Path(url.database).expanduser().resolve()))
    return url.render_as_string(hide_password=False)


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
    read_only_kwargs: Callable[[URL], dict] | None = None  # engine kwargs of a session that cannot write


def _sqlite_kwargs(url: URL) -> dict:
    if _sqlite_memory(url):
        return {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return {}


def _sqlite_read_only_kwargs(url: URL) -> dict:
    """Open the existing file with ``mode=ro``: nothing is created, nothing can be written."""
    if _sqlite_memory(url):
        return _sqlite_kwargs(url)
    path = Path(url.database).resolve()
    if not path.is_file():
        raise StoreConnectionError(f"no store at {path}: the file does not exist (a command that writes, e.g. "
                                   "ganas supernet register, creates it)")
    uri = f"{path.as_uri()}?{_read_only_mode(path)}"
    return {"creator": lambda: sqlite3.connect(uri, uri=True, check_same_thread=False)}


def _read_only_mode(path: Path) -> str:
    """``mode=ro`` on a WAL database needs its index file (``-shm``), which SQLite cannot make in a folder it may not
    write. Without ``-shm`` and without a non-empty ``-wal`` no writer is active and no log waits to be replayed, so
    the file is read ``immutable``, as it is; otherwise ``mode=ro`` (which reports a log it cannot read)."""
    folder_writable = os.access(path.parent, os.W_OK)
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    if folder_writable or shm.exists() or (wal.exists() and wal.stat().st_size > 0):
        return "mode=ro"
    return "mode=ro&immutable=1"


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


def server_engine_kwargs(url: URL) -> dict:
    """A dead server is detected on checkout; libpq drivers give up connecting after a bounded time (also for
    Optuna's engine on the same database)."""
    kwargs: dict = {"pool_pre_ping": True}
    if url.get_driver_name() in ("psycopg2", "psycopg") and "connect_timeout" not in url.query:
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    return kwargs


def _postgresql_read_only_kwargs(url: URL) -> dict:
    return {**server_engine_kwargs(url), "execution_options": {"postgresql_readonly": True}}


BACKENDS: dict[str, _Backend] = {
    "sqlite": _Backend(_sqlite_kwargs, _sqlite_on_connect, _sqlite_prepare, None, _sqlite_begin,
                       _sqlite_read_only_kwargs),
    "postgresql": _Backend(server_engine_kwargs, None, None, _postgresql_lock, None, _postgresql_read_only_kwargs),
}
_GENERIC = _Backend(server_engine_kwargs, None, None, None)


class Database:
    """An engine plus the transaction discipline the store relies on. Thread-safe."""

    def __init__(self, path_or_url: str | os.PathLike, busy_timeout_s: float = 30.0, *, read_only: bool = False):
        self.url = as_url(path_or_url)
        self.read_only = read_only
        self.backend = BACKENDS.get(self.url.get_backend_name(), _GENERIC)
        kwargs = self.backend.read_only_kwargs if read_only and self.backend.read_only_kwargs else \
            self.backend.engine_kwargs
        try:
            self.engine: Engine = create_engine(self.url, **kwargs(self.url))
        except NoSuchModuleError:
            raise StoreUrlError(f"{self.safe_url} names a database kind SQLAlchemy does not know "
                                f"({self.url.drivername!r}); use e.g. sqlite:///PATH/ganas.db or "
                                "postgresql+psycopg2://USER:PASSWORD@HOST/DB") from None
        except (ModuleNotFoundError, ImportError) as exc:
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
        if write and self.read_only:
            raise ReadOnlyStoreError(f"the store at {self.safe_url} was opened read-only; a write needs a command "
                                     "that writes (and write access to the database)")
        with self._lock:
            try:
                conn = self.engine.connect()
            except OperationalError as exc:
                raise self.cannot_open(exc) from None
            with conn:
                if write:
                    conn = conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    yield conn

    def cannot_open(self, exc: OperationalError) -> StoreConnectionError:
        """The error for a database that cannot be reached, opened, or (when writing) written."""
        reason = _one_line(exc.orig)
        hint = ("; the database or its folder is not writable: commands that only read (ganas search list, status, "
                "front, ganas supernet list, show) still work" if "readonly" in reason.replace(" ", "") else "")
        return StoreConnectionError(f"cannot open the store at {self.safe_url}: {reason}{hint}")

    def read(self):
        """A read transaction (a consistent snapshot; never blocks the writer on SQLite WAL)."""
        return self._transaction(write=False)

    def write(self):
        """A write transaction, committed on exit and rolled back on error."""
        return self._transaction(write=True)

    def prepare(self) -> None:
        """Persistent per-database settings (SQLite: WAL), applied once the schema is known to be ours."""
        if self.backend.prepare is None or self.read_only:
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


def _one_line(error: BaseException) -> str:
    """A driver's message on one line (libpq's spans several, with tabs)."""
    return " ".join(str(error).split())

