"""The workspace: one folder holding everything a run writes (database, MLflow, samples, caches).

Default ``./ganas-workspace``; ``--workspace`` or ``$GANAS_WORKSPACE`` overrides it. The store (supernets,
searches, candidates, Optuna's studies) is the workspace's SQLite file ``ganas.db`` unless a store URL is
chosen (``--store`` or ``$GANAS_STORE_URL``), e.g. a PostgreSQL database shared by several machines; the
folder still holds MLflow's default store, samples, caches and final models.

A workspace can be moved, copied or mounted elsewhere: every path the store records goes through
:meth:`Workspace.relative` (relative to the root when inside the workspace, absolute otherwise) and
is read back through :meth:`Workspace.absolute`, against whichever workspace reads it (with a shared
store, each machine's own mount of the workspace).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from foundation.errors import GanasError

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported when a store is opened
    from .store import Store

ENV_VAR = "GANAS_WORKSPACE"
STORE_ENV_VAR = "GANAS_STORE_URL"
DEFAULT = "ganas-workspace"
DATABASE_NAME = "ganas.db"


class WorkspaceError(GanasError):
    """A workspace folder that does not exist (for a command that only reads) or that cannot be one."""


def recorded_path(path: str | os.PathLike, workspace: "Workspace | None") -> str:
    """How the store records ``path``: :meth:`Workspace.relative` to ``workspace``; absolute without one."""
    return workspace.relative(path) if workspace is not None else str(Path(path).expanduser().resolve())


@dataclass(frozen=True)
class Workspace:
    root: Path
    store_url: str | None = None  # None: the SQLite file in the folder

    @classmethod
    def resolve(cls, flag: str | os.PathLike | None = None, store: str | None = None) -> "Workspace":
        """The folder (``flag``, else ``$GANAS_WORKSPACE``, else ``./ganas-workspace``) and the store (``store``,
        else ``$GANAS_STORE_URL``, else the folder's ``ganas.db``). A SQLite path in a store URL is made absolute;
        a malformed URL is reported when the store is opened (commands that never open it do not care)."""
        chosen = flag if flag is not None else os.environ.get(ENV_VAR, DEFAULT)
        url = store or os.environ.get(STORE_ENV_VAR) or None  # an empty value is no value, as for a shell variable
        if url is not None:
            from .store import StoreUrlError, absolute_url

            try:
                url = absolute_url(url)
            except StoreUrlError:
                pass
        return cls(Path(chosen).expanduser().resolve(), url)

    def relative(self, path: str | os.PathLike) -> str:
        """How the store records ``path``: relative to the root (POSIX) when it lies inside the workspace, so
        that a copy of the workspace reads its own files; absolute otherwise (a dataset kept elsewhere)."""
        resolved = Path(path).expanduser().resolve()
        root = self.root.resolve()
        return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(resolved)

    def absolute(self, stored: str | os.PathLike) -> Path:
        """A path as the store records it, in this workspace: relative ones are joined to the root, absolute
        ones (files outside the workspace, and every path stores written before relative paths) kept as is."""
        path = Path(stored)
        return path if path.is_absolute() else self.root / path

    def ensure(self) -> "Workspace":
        self._refuse_file()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"cannot create the workspace folder {self.root}: {exc.strerror or exc}; pass "
                                 "--workspace DIR (or set $GANAS_WORKSPACE) to a folder you can write") from None
        return self

    @property
    def database_url(self) -> str:
        """The store's URL (Optuna's studies live in the same database)."""
        return self.store_url or f"sqlite:///{self.root / DATABASE_NAME}"

    @property
    def store_label(self) -> str:
        """Where the store is, for messages: the SQLite file, or the URL with its password masked."""
        if self.store_url is None:
            return str(self.root / DATABASE_NAME)
        from .store import as_url

        return as_url(self.store_url).render_as_string(hide_password=True)

    def open_store(self, *, read_only: bool = False, create: bool = True) -> "Store":
        """The store, as a command needs it.

        Writers (the default) create the folder (and the SQLite file) if missing. ``create=False``: the store
        must exist already (a command about an existing search). ``read_only``: nothing is created or written,
        the SQLite file is opened ``mode=ro`` (a read-only workspace can be listed), and with a store URL the
        folder need not exist at all.
        """
        from .store import Store

        self._refuse_file()
        if read_only or not create:
            self._require_store()
        if read_only:
            return Store(self.database_url, read_only=True)
        if not create and self.store_url is not None:
            Store(self.database_url, read_only=True).close()  # an existing ganas store, not one a typo would create
        if self.store_url is None:
            self.ensure()  # the SQLite file goes in it
        store = Store(self.database_url)  # a server that cannot be used is refused before the folder is made
        try:
            self.ensure()  # MLflow, samples and final models go in it
        except BaseException:
            store.close()
            raise
        return store

    def _refuse_file(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise WorkspaceError(f"the workspace {self.root} is a file, not a folder; pass --workspace DIR (or set "
                                 "$GANAS_WORKSPACE) to a workspace folder")

    def _require_store(self) -> None:
        """A workspace's own store must exist; a typo in --workspace must not look like an empty workspace."""
        if self.store_url is not None:
            return
        if not self.root.is_dir() or not (self.root / DATABASE_NAME).is_file():
            what = "no folder" if not self.root.is_dir() else f"no {DATABASE_NAME} in it"
            raise WorkspaceError(f"no ganas workspace at {self.root} ({what}; create one with ganas demo / ganas "
                                 "supernet register ..., or pass --workspace)")

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def cache(self) -> Path:
        """Reference statistics of real images, keyed by content hash."""
        return self.root / "cache"

    def search_dir(self, search_id: int) -> Path:
        return self.root / "searches" / str(search_id)

    def samples_dir(self, search_id: int) -> Path:
        return self.search_dir(search_id) / "samples"

    def final_dir(self, search_id: int, config: str) -> Path:
        """A final model's files (checkpoint, exports) and its fine-tuning checkpoints."""
        return self.search_dir(search_id) / "final" / config
