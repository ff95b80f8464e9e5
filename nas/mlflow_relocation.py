"""A workspace's own MLflow database follows the workspace when it is moved, copied or mounted elsewhere.

MLflow keeps absolute artifact locations: the experiment's, and every run's, logged model's and model
version's, derived from it when each is created; a relative location is resolved against the current
directory at once. A copied ``mlflow.db`` would therefore keep writing artifacts into the original
workspace. So when the experiment's artifact root is not the workspace's own, every location under the
old root is rewritten to the same place under the new one, in one transaction on the workspace's own
database (the original workspace is never opened). Only a database that lies beside the artifact root,
as the workspace lays them out, is rewritten: a tracking server, or a database shared by several
workspaces, keeps its locations.

MLflow also caches each run's artifact repository for the whole process, keyed by run id alone, and a
copy shares its run ids with the original: a process that logged to both would write the copy's
artifacts into the original. :func:`forget_artifact_repositories` drops that cache.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse


def follow_workspace(tracking_uri: str, recorded_root: str, artifact_root: Path) -> bool:
    """Repoint the workspace's MLflow records from ``recorded_root`` (the experiment's artifact location)
    to ``artifact_root`` when the workspace moved; returns whether anything was rewritten."""
    database = workspace_database(tracking_uri, artifact_root)
    new_root = artifact_root.resolve().as_uri()
    if database is None or recorded_root == new_root or urlparse(recorded_root).scheme != "file":
        return False
    relocate(database, recorded_root, new_root)
    return True


def forget_artifact_repositories() -> None:
    """Make MLflow look up each run's artifact location again (in the database of the client that asks)."""
    from mlflow.tracking._tracking_service import utils

    cache = getattr(utils, "_artifact_repos_cache", None)  # private: absent in another MLflow, nothing to drop
    if cache is not None:
        cache.clear()


def workspace_database(tracking_uri: str, artifact_root: Path) -> Path | None:
    """The SQLite file of ``tracking_uri`` when it lies beside ``artifact_root`` (the workspace's layout)."""
    from sqlalchemy.engine import make_url

    if not tracking_uri.startswith("sqlite:"):
        return None
    database = make_url(tracking_uri).database
    if not database:
        return None
    path = Path(database).resolve()
    return path if path.parent == artifact_root.resolve().parent else None


def relocate(database: Path, old_root: str, new_root: str) -> int:
    """Rewrite every text value that is ``old_root`` or lies under it to the same place under ``new_root``,
    in every table (so a location column added by a later MLflow is covered too); returns the rows changed."""
    from sqlalchemy import String, column, create_engine, func, inspect, literal, or_, table

    engine = create_engine(f"sqlite:///{database}")
    changed = 0
    try:
        with engine.begin() as conn:
            inspector = inspect(conn)
            for name in inspector.get_table_names():
                for spec in inspector.get_columns(name):
                    if not isinstance(spec["type"], String):
                        continue
                    value = column(spec["name"])
                    rows = table(name, value)
                    under = func.substr(value, 1, len(old_root) + 1) == old_root + "/"
                    moved = literal(new_root) + func.substr(value, len(old_root) + 1)
                    changed += conn.execute(rows.update().where(or_(value == old_root, under))
                                            .values({spec["name"]: moved})).rowcount
    finally:
        engine.dispose()
    return changed
