"""An MLflow tracking URI before it is used: refused when it cannot work, probed when it is a server, and
MLflow's HTTP retries bounded for ganas's own logging.

MLflow is the audit log and the store the source of truth, so a tracking server that is down costs a
search nothing (see :mod:`nas.orchestrator.reporting`); a URI that can never work (a file store this
MLflow refuses, an unknown scheme, a server URI without a host) is refused before anything is written.
Nothing here imports MLflow unless the URI needs it, so the CLI checks a flag in microseconds.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable
from urllib.parse import SplitResult, urlsplit

from foundation.errors import GanasError

# MLflow's own defaults retry a request 7 times with exponential backoff (about 4 minutes per call when the
# server is down) and wait 120 s for an answer. ganas's process uses these unless the user set them.
MLFLOW_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # no bars of MLflow's between ganas's own
}
PROBE_SECONDS = 3.0
PROFILE_URIS = ("databricks", "databricks-uc", "uc")  # tracking URIs that are a bare scheme (a default profile)
SUGGESTION = "use a database (sqlite:///PATH/mlflow.db) or a tracking server (http://HOST:PORT)"


class TrackingUriError(GanasError):
    """An MLflow tracking URI that cannot work: nothing was written."""


def _server(parts: SplitResult, uri: str) -> str | None:
    try:
        parts.port  # noqa: B018  (parses the port, raising ValueError on a bad one)
    except ValueError:
        return "its port is not a number from 0 to 65535 (http://HOST:PORT)"
    return None if parts.hostname else "it names no host (http://HOST:PORT)"


def _sqlite(parts: SplitResult, uri: str) -> str | None:
    path = uri.partition("://")[2][1:] if uri.startswith("sqlite:///") else ""
    if path in ("", ":memory:"):
        return "an in-memory database forgets every run when the process ends; name a file: sqlite:///PATH/mlflow.db"
    if Path(path).is_dir():
        return f"{path} is a folder; name a database file in it: sqlite:///{path.rstrip('/')}/mlflow.db"
    existing = next((p for p in Path(path).resolve().parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return f"{existing} is a file, so no database can be created below it"
    return None


def _database(parts: SplitResult, uri: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(uri)
    except (ArgumentError, ValueError) as exc:
        return f"it is not a database URL ({exc})"
    return None


def _file_store(parts: SplitResult, uri: str) -> str | None:
    """MLflow 3 refuses the file store unless MLFLOW_ALLOW_FILE_STORE is set; an older one accepts it."""
    try:
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
    except ImportError:
        return None
    if MLFLOW_ALLOW_FILE_STORE.get():
        return None
    from importlib.metadata import version

    return (f"it is a file store, which MLflow {version('mlflow')} refuses; {SUGGESTION} "
            "(or set MLFLOW_ALLOW_FILE_STORE=true to use the file store anyway)")


def _accepted(parts: SplitResult, uri: str) -> str | None:
    return None


# URI scheme (before any "+driver") -> the check that says why such a URI cannot work (None: it can)
SCHEMES: dict[str, Callable[[SplitResult, str], str | None]] = {
    "http": _server, "https": _server,
    "sqlite": _sqlite,
    "postgresql": _database, "mysql": _database, "mssql": _database,
    "databricks": _accepted, "databricks-uc": _accepted, "uc": _accepted,
    "file": _file_store, "": _file_store,
}


def check_tracking_uri(uri: str) -> str:
    """``uri`` itself, or :class:`TrackingUriError` saying why MLflow cannot log there and what to use instead."""
    if not isinstance(uri, str) or not uri.strip() or uri != uri.strip() or any(ord(c) < 32 for c in uri):
        raise TrackingUriError(f"MLflow tracking URI {uri!r} is empty or has spaces or control characters; "
                               f"{SUGGESTION}")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise TrackingUriError(f"MLflow tracking URI {uri!r} is malformed ({exc}); {SUGGESTION}") from None
    scheme = parts.scheme.lower().partition("+")[0] or (uri if uri in PROFILE_URIS else "")
    check = SCHEMES.get(scheme)
    if check is None:
        if scheme in _plugin_schemes():
            return uri
        known = ", ".join(sorted(s for s in SCHEMES if s))
        raise TrackingUriError(f"MLflow tracking URI {uri!r} has the unknown scheme {parts.scheme!r} (known: {known}, "
                               f"and those of installed MLflow plug-ins); {SUGGESTION}")
    problem = check(parts, uri)
    if problem is not None:
        raise TrackingUriError(f"MLflow tracking URI {uri!r} cannot work: {problem}")
    return uri


def _plugin_schemes() -> set[str]:
    """Schemes that installed packages add to MLflow (its ``mlflow.tracking_store`` entry points)."""
    return {e.name for e in entry_points(group="mlflow.tracking_store")}


def bound_mlflow() -> None:
    """Bound MLflow's HTTP retries and timeout, and silence its artifact progress bars, in this process (and the
    processes it starts) unless the user set them: a tracking server that is down fails a call in seconds."""
    for name, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(name, value)


def unreachable_reason(uri: str, timeout: float = PROBE_SECONDS) -> str | None:
    """Why a tracking server does not answer (connection refused, timed out, ...), or None when it answers.

    Only http(s) URIs are probed (any HTTP answer counts, even an error page); a database URI gives None.
    """
    if urlsplit(uri).scheme.lower() not in ("http", "https"):
        return None
    request = urllib.request.Request(uri.rstrip("/") + "/health", method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as exc:
        return str(exc.reason)
    except (OSError, ValueError) as exc:
        return str(exc) or type(exc).__name__


def tracking_answers(uri: str) -> bool:
    """Whether MLflow at ``uri`` answers now: a server is probed over HTTP, a database by one cheap query."""
    if urlsplit(uri).scheme.lower() in ("http", "https"):
        return unreachable_reason(uri) is None
    try:
        from mlflow import MlflowClient

        bound_mlflow()
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception:  # whatever MLflow raises, it does not answer
        return False
    return True
