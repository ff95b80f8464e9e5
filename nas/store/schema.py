"""Schema versioning: create a new database at the current version, migrate an older one, refuse others.

The version lives in ``ganas_meta`` (key ``schema_version``). A migration is a function that
takes a database from version ``n`` to ``n + 1`` inside a transaction; :data:`MIGRATIONS`
registers them by ``n`` (the steps are at the end of this module). Opening runs every step from the
found version to the current one in ONE transaction, so a failing step leaves the database exactly as
it was.

Why not Alembic: Optuna's RDB storage, which shares this database, already keeps its own
Alembic history in the ``alembic_version`` table; a second Alembic environment would need a
renamed version table, a scripts directory shipped inside the package and its ``env.py``.
The store has three tables and a linear history, so a registry of Python functions is smaller
and has nothing to misconfigure. Migration steps may still use Alembic's ``Operations``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from sqlalchemy import JSON, Column, Integer, column, inspect, select, table
from sqlalchemy.engine import Connection

from .engine import Database
from .errors import EmptyStoreError, SchemaVersionError
from .models import SCHEMA_VERSION, TABLE_PREFIX, Base, meta

VERSION_KEY = "schema_version"


@dataclass(frozen=True)
class Migration:
    """One step of the schema history: ``from_version`` -> ``from_version + 1``."""

    from_version: int
    description: str
    apply: Callable[[Connection], None]


MIGRATIONS: dict[int, Migration] = {}


def register_migration(from_version: int, description: str):
    """Decorator adding a step to :data:`MIGRATIONS` (the next schema change starts here)."""

    def add(function: Callable[[Connection], None]) -> Callable[[Connection], None]:
        if from_version in MIGRATIONS:
            raise ValueError(f"a migration from schema version {from_version} is already registered")
        MIGRATIONS[from_version] = Migration(from_version, description, function)
        return function

    return add


def found_version(conn: Connection) -> int | None:
    """The database's schema version; None for a database holding no ganas tables at all."""
    tables = {t for t in inspect(conn).get_table_names() if t.startswith(TABLE_PREFIX)}
    if not tables:
        return None
    if meta.name not in tables:
        raise SchemaVersionError(
            f"the database has ganas tables ({', '.join(sorted(tables))}) but no {meta.name} table, so its "
            "schema version is unknown; it was not written by ganas or is damaged: use a new database")
    value = conn.execute(select(meta.c.value).where(meta.c.key == VERSION_KEY)).scalar_one_or_none()
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SchemaVersionError(
            f"{meta.name} holds schema version {value!r}, which this ganas does not know (it supports "
            f"{SCHEMA_VERSION}); use a new database or the ganas release that created it") from None


def check_version(found: int | None, current: int, migrations: Mapping[int, Migration], where: str) -> None:
    """Raise :class:`SchemaVersionError` unless ``found`` is new, current, or migratable to current."""
    if found is None or found == current:
        return
    if found > current:
        raise SchemaVersionError(
            f"the store at {where} has schema version {found}, newer than the version this ganas supports "
            f"({current}); upgrade ganas (pip install -U ganas) or open another database. Nothing was changed.")
    missing = [v for v in range(found, current) if v not in migrations]
    if found < 0 or missing:
        raise SchemaVersionError(
            f"the store at {where} has schema version {found}; this ganas supports {current} but has no "
            f"migration from version {missing[0] if missing else found}. Open it with the ganas release that "
            "created it, or use a new database. Nothing was changed.")


def _set_version(conn: Connection, version: int) -> None:
    updated = conn.execute(meta.update().where(meta.c.key == VERSION_KEY).values(value=str(version)))
    if updated.rowcount == 0:
        conn.execute(meta.insert().values(key=VERSION_KEY, value=str(version)))


def ensure_schema(db: Database, current: int = SCHEMA_VERSION,
                  migrations: Mapping[int, Migration] = MIGRATIONS) -> int:
    """Make the database ready at ``current``; returns the version found before (None: new)."""
    with db.read() as conn:  # refuse before touching anything, even the journal mode
        check_version(found_version(conn), current, migrations, db.safe_url)
    db.prepare()
    with db.write() as conn:
        db.lock_schema(conn)
        found = found_version(conn)  # again: another process may have created or migrated it meanwhile
        check_version(found, current, migrations, db.safe_url)
        if found is None:
            Base.metadata.create_all(conn)
            _set_version(conn, current)
        else:
            for version in range(found, current):
                migrations[version].apply(conn)
                _set_version(conn, version + 1)
    return found


def check_readable(db: Database, current: int = SCHEMA_VERSION,
                   migrations: Mapping[int, Migration] = MIGRATIONS) -> int:
    """What a read-only open checks instead of :func:`ensure_schema` (which writes): the database holds ganas tables
    at ``current``; an older one is reported, not migrated. Returns the version found."""
    with db.read() as conn:
        found = found_version(conn)
    if found is None:
        raise EmptyStoreError(f"the store at {db.safe_url} holds no ganas tables yet: nothing was registered there "
                              "(ganas supernet register ... with the same store creates them)")
    check_version(found, current, migrations, db.safe_url)
    if found < current:
        raise SchemaVersionError(
            f"the store at {db.safe_url} has schema version {found}, older than this ganas's {current}; it was opened "
            "read-only, so it was not migrated: start ganas serve on it once with write access (it migrates the store "
            "as it opens it and changes nothing else), or run any command that writes to it. Nothing was changed.")
    return found


# -- the schema's history: one step per version ------------------------------------------------------------
@register_migration(1, "searches get a typed, versioned plan column; strategy_settings keeps the strategy's own")
def _searches_get_a_plan_column(conn: Connection) -> None:
    """Version 1 kept a search's plan inside ``strategy_settings`` as ``{"plan": {...}, "strategy": {...}}``
    (the layout nas.search_setup wrote); version 2 keeps it in ``plan`` as ``{"version": 1, ...}`` and only
    the strategy's own settings in ``strategy_settings``. Rows of any other layout (searches created through
    the store directly) keep their settings and get no plan."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    plan_type = JSON(none_as_null=True)
    Operations(MigrationContext.configure(conn)).add_column("ganas_searches", Column("plan", plan_type, nullable=True))
    rows = table("ganas_searches", column("id"), column("strategy_settings", JSON), column("plan", plan_type))
    for search_id, settings in conn.execute(select(rows.c.id, rows.c.strategy_settings)).all():
        old_layout = isinstance(settings, dict) and isinstance(settings.get("plan"), dict) and \
            set(settings) <= {"plan", "strategy"}
        if old_layout:
            conn.execute(rows.update().where(rows.c.id == search_id).values(
                plan={"version": 1, **settings["plan"]}, strategy_settings=dict(settings.get("strategy") or {})))


@register_migration(2, "supernets and searches record their teacher; finalize jobs and final models get a table")
def _teachers_and_finals(conn: Connection) -> None:
    """Version 3: ``ganas_supernets.teacher`` (the teacher a supernet was distilled from), ``ganas_searches.teacher``
    (the teacher's figures on the search split) and the ``ganas_finals`` table. Existing rows have no teacher
    (None), which every view shows as "no teacher recorded"."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    operations = Operations(MigrationContext.configure(conn))
    for name in ("ganas_supernets", "ganas_searches"):
        operations.add_column(name, Column("teacher", JSON(none_as_null=True), nullable=True))
    Base.metadata.tables["ganas_finals"].create(conn)


@register_migration(3, "candidates and finalize jobs count their lost leases apart from their attempts")
def _lost_leases(conn: Connection) -> None:
    """Version 4: ``lost`` on ``ganas_candidates`` and ``ganas_finals``, the leases that ended because a worker or
    the orchestrator died (not attempts). Existing rows start at 0; their attempts stay as they were counted.
    A finals table made by step 2 in the same run already has the column (it is created from the models)."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    operations = Operations(MigrationContext.configure(conn))
    for name in ("ganas_candidates", "ganas_finals"):
        if "lost" not in {c["name"] for c in inspect(conn).get_columns(name)}:
            operations.add_column(name, Column("lost", Integer, nullable=False, server_default="0"))
