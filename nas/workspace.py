"""The workspace: one folder holding everything a run writes (database, MLflow, samples, caches).

Default ``./ganas-workspace``; ``--workspace`` or ``$GANAS_WORKSPACE`` overrides it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "GANAS_WORKSPACE"
DEFAULT = "ganas-workspace"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, flag: str | os.PathLike | None = None) -> "Workspace":
        chosen = flag if flag is not None else os.environ.get(ENV_VAR, DEFAULT)
        return cls(Path(chosen).expanduser().resolve())

    def ensure(self) -> "Workspace":
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def database_url(self) -> str:
        """The store (and Optuna's studies) live in one SQLite file by default."""
        return f"sqlite:///{self.root / 'ganas.db'}"

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
