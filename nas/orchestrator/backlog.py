"""What MLflow has not received yet for a search: a count of records per tracking URI, in the workspace.

The store holds every result, so nothing is lost while MLflow is down; this small JSON file
(``searches/ID/mlflow-backlog.json``) only counts the records (the run and its parameters, progress
points, candidate batches, front updates, final models) that did not reach a tracking URI, so that
``ganas search status`` can say so and ``ganas search sync`` knows what it caught up on. It is
written as the count changes, so a killed process leaves it right.
"""
from __future__ import annotations

import json
import threading

from foundation.files import atomic_write_text

from ..workspace import Workspace

BACKLOG_NAME = "mlflow-backlog.json"
OWN = "workspace"  # the key of the workspace's own MLflow, whose absolute URI changes when the workspace moves
_lock = threading.RLock()  # the reporter's thread and the main thread of one process


class MlflowBacklog:
    """Records of one search not logged to MLflow, per tracking URI."""

    def __init__(self, workspace: Workspace, search_id: int):
        self.workspace, self.search_id = workspace, search_id
        self.path = workspace.search_dir(search_id) / BACKLOG_NAME

    def counts(self) -> dict[str, int]:
        """Tracking URI -> records not logged there (empty when MLflow has everything)."""
        return {self.workspace.mlflow_uri if key == OWN else key: n for key, n in self._stored().items()}

    def _stored(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text())
            return {str(key): int(n) for key, n in data["not_logged"].items() if int(n) > 0}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # none yet (written atomically)
            return {}

    def set(self, uri: str, count: int) -> None:
        key = OWN if uri == self.workspace.mlflow_uri else uri  # a moved or copied workspace keeps its own
        with _lock:
            counts = self._stored()
            if counts.get(key, 0) == count:
                return
            counts[key] = count
            counts = {k: n for k, n in counts.items() if n > 0}
            if counts:
                atomic_write_text(self.path, json.dumps({"not_logged": counts}, indent=1, sort_keys=True))
            else:
                self.path.unlink(missing_ok=True)

    def add(self, uri: str, count: int = 1) -> None:
        with _lock:
            self.set(uri, self.counts().get(uri, 0) + count)

    def clear(self, uri: str) -> None:
        self.set(uri, 0)

    def sync_command(self, uri: str) -> str:
        """The command that logs what is missing (``--mlflow-uri`` only when not the workspace's own MLflow)."""
        flag = "" if uri == self.workspace.mlflow_uri else f" --mlflow-uri {uri}"
        return f"ganas search sync {self.search_id}{flag}"

    def describe(self) -> list[str]:
        """One line per tracking URI that is behind, for ``ganas search status``."""
        return [f"MLflow: {n} record{'s' if n != 1 else ''} not logged to {uri}; run {self.sync_command(uri)}"
                for uri, n in sorted(self.counts().items())]
