"""The store on SQLite (always) and PostgreSQL (when GANAS_TEST_POSTGRES_URL is set), plus backend details."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import IntegrityError

from nas.store import (SCHEMA_VERSION, EmptyStoreError, ReadOnlyStoreError, SchemaVersionError, Store,
                       StoreConnectionError, StoreUrlError, as_url)
from nas.store.models import TABLE_PREFIX, Base, candidates

from .store_conformance import SHA, StoreConformance, run_threads, set_version

POSTGRES_URL = os.environ.get("GANAS_TEST_POSTGRES_URL", "")


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def store_url(self, tmp_path):
        return f"sqlite:///{tmp_path / 'ganas.db'}"


def _drop_ganas_tables(url: str) -> None:
    engine = create_engine(url)
    try:
        Base.metadata.drop_all(engine)
    finally:
        engine.dispose()


if POSTGRES_URL:
    class TestPostgresStore(StoreConformance):
        @pytest.fixture
        def store_url(self):
            _drop_ganas_tables(POSTGRES_URL)
            yield POSTGRES_URL
            _drop_ganas_tables(POSTGRES_URL)
else:
    def test_postgres_conformance():
        pytest.skip("set GANAS_TEST_POSTGRES_URL=postgresql+psycopg2://USER@HOST/DB to run the store conformance "
                    "tests on PostgreSQL too (the ganas_* tables of that database are dropped)")


def _store_with_search(url, **kwargs):
    store = Store(url, **kwargs)
    store.register_supernet("s", architecture="resnet", space="resnet_64", checkpoint="c", checkpoint_sha256=SHA)
    search = store.create_search("s", budgets=[10], objectives=["fid"], strategy="random", trials=5)
    return store, search


def test_sqlite_file_has_wal_busy_timeout_and_foreign_keys(tmp_path):
    path = tmp_path / "new" / "dir" / "ganas.db"  # a plain path is a SQLite file; folders are created
    store = Store(path, busy_timeout_s=7)
    try:
        assert store.url == f"sqlite:///{path}" and path.is_file()
        with store.db.read() as conn:
            pragma = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("journal_mode", "busy_timeout",
                                                                                 "foreign_keys")}
        assert pragma == {"journal_mode": "wal", "busy_timeout": 7000, "foreign_keys": 1}
        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            with store.db.write() as conn:
                conn.execute(candidates.insert().values(search_id=999, config="1_1", order_index=0, macs=1, params=1,
                                                        status="queued", metrics={}, attempts=0, queued_at=0.0))
    finally:
        store.close()


def test_refused_sqlite_file_is_byte_for_byte_unchanged(tmp_path):
    path = tmp_path / "ganas.db"
    store, search = _store_with_search(path)
    store.add_candidates(search.id, [("16_16", 1, 1)])
    store.close()
    set_version(f"sqlite:///{path}", str(SCHEMA_VERSION + 1))
    before = path.read_bytes()
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION + 1}, newer than .* supports "
                                                 f"\\({SCHEMA_VERSION}\\)"):
        Store(path)
    assert path.read_bytes() == before


def test_foreign_ganas_tables_without_meta_are_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'other.db'}"
    engine = create_engine(url)
    candidates.metadata.tables["ganas_supernets"].create(engine)
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="no ganas_meta table"):
        Store(url)


def test_in_memory_store_is_one_database_shared_by_threads():
    store, search = _store_with_search("sqlite://")
    try:
        store.add_candidates(search.id, [(f"{i}_1", i, 1) for i in range(1, 31)])
        got = {"a": [], "b": []}

        def leaser(name):
            def run():
                while leased := store.lease_candidates(search.id, name, 3, 60):
                    got[name] += [c.id for c in leased]
            return run

        run_threads([leaser("a"), leaser("b")])
        every = got["a"] + got["b"]
        assert sorted(every) == sorted(c.id for c in store.candidates(search.id)) and len(set(every)) == 30
    finally:
        store.close()


def test_urls_and_connection_errors_are_typed(tmp_path):
    assert as_url("ws/ganas.db").get_backend_name() == "sqlite"
    with pytest.raises(StoreUrlError, match="nosuchdb://x names a database kind SQLAlchemy does not know"):
        Store("nosuchdb://x")
    with pytest.raises(StoreUrlError, match="not a database URL"):
        Store("sqlite:://ganas.db")
    with pytest.raises(StoreUrlError, match="not a database URL"):
        Store("postgresql://u@h:notaport/db")
    with pytest.raises(StoreConnectionError, match="cannot open the store at postgresql") as info:
        Store("postgresql+psycopg2://ganas:s3cret@127.0.0.1:1/nodb")  # nothing listens on port 1
    assert "s3cret" not in str(info.value) and "***" in str(info.value)
    with pytest.raises(StoreConnectionError, match="unable to open database file"):
        Store(tmp_path)  # a folder, not a database file


def test_optuna_studies_share_the_database(tmp_path):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(logging.WARNING)
    url = f"sqlite:///{tmp_path / 'ganas.db'}"
    study = optuna.create_study(storage=url, study_name="ganas-search-1", directions=["minimize", "minimize"])
    trial = study.ask()
    study.tell(trial, [float(trial.suggest_int("c0", 16, 64)), 1.0])
    store, search = _store_with_search(url)  # opens a database that already holds Optuna's tables
    store.add_candidates(search.id, [("16_16", 1, 1)])
    store.close()
    reloaded = optuna.load_study(storage=url, study_name="ganas-search-1")
    assert len(reloaded.trials) == 1
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    ours = set(Base.metadata.tables)
    assert ours <= tables and all(t.startswith(TABLE_PREFIX) for t in ours)
    assert {"studies", "trials", "alembic_version"} <= tables - ours


# -- read-only opens (what the CLI's read commands use) ---------------------------------------------------------
def test_a_read_only_store_reads_and_never_writes(tmp_path):
    import sqlite3

    path = tmp_path / "ganas.db"
    store, search = _store_with_search(path)
    store.close()
    before = path.read_bytes()
    with Store(path, read_only=True) as reader:
        assert [s.id for s in reader.list_searches()] == [search.id] and reader.get_supernet("s").name == "s"
        with pytest.raises(ReadOnlyStoreError, match="opened read-only"):
            reader.set_search_state(search.id, "running")
        raw = reader.db.engine.raw_connection()  # the connection itself is mode=ro, not only the code path
        try:
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                raw.cursor().execute("CREATE TABLE intruder (x INTEGER)")
        finally:
            raw.close()
    assert path.read_bytes() == before


def test_a_read_only_open_reports_what_it_cannot_read_and_changes_nothing(tmp_path):
    with pytest.raises(StoreConnectionError, match="no store at .*absent.db: the file does not exist"):
        Store(tmp_path / "absent.db", read_only=True)
    assert not (tmp_path / "absent.db").exists()
    empty = tmp_path / "empty.db"
    create_engine(f"sqlite:///{empty}").connect().close()  # a database file without ganas tables
    with pytest.raises(EmptyStoreError, match="holds no ganas tables yet"):
        Store(empty, read_only=True)
    path = tmp_path / "old.db"
    _store_with_search(path)[0].close()
    set_version(f"sqlite:///{path}", str(SCHEMA_VERSION - 1))  # an older ganas wrote it
    before = path.read_bytes()
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION - 1}, older than this ganas's "
                                                 f"{SCHEMA_VERSION}; it was opened read-only, so it was not migrated"):
        Store(path, read_only=True)
    assert path.read_bytes() == before


def test_a_read_only_folder_is_read_as_immutable_unless_a_log_is_pending(tmp_path, monkeypatch):
    """Without write access to the folder SQLite cannot make the WAL index, so a WAL file is opened immutable,
    which is only right when no write-ahead log waits to be replayed."""
    from nas.store import engine

    path = tmp_path / "ganas.db"
    store, search = _store_with_search(path)
    store.close()
    monkeypatch.setattr(engine.os, "access", lambda p, mode: False)  # the folder as a non-root user sees it
    assert engine._read_only_mode(path) == "mode=ro&immutable=1"
    with Store(path, read_only=True) as reader:
        assert [s.id for s in reader.list_searches()] == [search.id]
    Path(f"{path}-wal").write_bytes(b"\0" * 32)
    assert engine._read_only_mode(path) == "mode=ro"


@pytest.mark.skipif(not POSTGRES_URL, reason="set GANAS_TEST_POSTGRES_URL to test read-only PostgreSQL sessions")
def test_a_read_only_postgresql_session_cannot_write():
    from sqlalchemy.exc import InternalError

    _drop_ganas_tables(POSTGRES_URL)
    try:
        with pytest.raises(EmptyStoreError):
            Store(POSTGRES_URL, read_only=True)  # nothing was created by the attempt
        _store_with_search(POSTGRES_URL)[0].close()
        with Store(POSTGRES_URL, read_only=True) as reader:
            assert len(reader.list_searches()) == 1
            with pytest.raises(InternalError, match="read-only transaction"):
                with reader.db.read() as conn:
                    conn.exec_driver_sql("CREATE TABLE ganas_intruder (x INTEGER)")
    finally:
        _drop_ganas_tables(POSTGRES_URL)
