"""MLflow tracking URIs: refused when they cannot work, probed when they name a server, retries bounded."""
import os
import socket
import time

import pytest

from nas.tracking_uri import MLFLOW_DEFAULTS, TrackingUriError, bound_mlflow, check_tracking_uri, unreachable_reason


@pytest.mark.parametrize("uri", ["sqlite:///mlflow.db", "sqlite:////tmp/ganas-test/mlflow.db", "http://127.0.0.1:5000",
                                 "https://mlflow.example.org/prefix", "postgresql://user@host:5432/mlflow",
                                 "postgresql+psycopg2://user@host/mlflow", "databricks", "databricks://profile"])
def test_uris_that_can_work_are_accepted_as_they_are(uri):
    assert check_tracking_uri(uri) == uri


@pytest.mark.parametrize("uri, says", [
    ("./mlruns", "file store, which MLflow"),
    ("file:///tmp/mlruns", "MLFLOW_ALLOW_FILE_STORE=true"),
    ("foo://bar", "unknown scheme 'foo'"),
    ("http://", "names no host"),
    ("http://host:port", "port is not a number"),
    ("sqlite://", "in-memory database"),
    ("sqlite:///:memory:", "in-memory database"),
    ("", "empty"),
    (" http://host:5000", "spaces"),
    ("mysql://::bad", "not a database URL"),
])
def test_uris_that_cannot_work_are_refused_with_what_to_use(uri, says, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(TrackingUriError) as error:
        check_tracking_uri(uri)
    assert str(error.value).startswith(f"MLflow tracking URI {uri!r} ") and says in str(error.value)


def test_sqlite_beside_a_file_or_on_a_folder_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrackingUriError, match="is a file"):
        check_tracking_uri(f"sqlite:///{tmp_path}/file/mlflow.db")
    with pytest.raises(TrackingUriError, match="is a folder"):
        check_tracking_uri(f"sqlite:///{tmp_path}")
    assert check_tracking_uri(f"sqlite:///{tmp_path}/new/mlflow.db")  # MLflow creates missing folders
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the check wrote nothing


def test_the_file_store_is_accepted_when_the_user_allows_it(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert check_tracking_uri("./mlruns") == "./mlruns"


def test_a_closed_port_is_reported_at_once_and_a_database_is_not_probed():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    assert "refused" in unreachable_reason(f"http://127.0.0.1:{port}").lower()
    assert time.monotonic() - started < 2
    assert unreachable_reason("sqlite:///nowhere/mlflow.db") is None


def test_retries_are_bounded_in_this_process_unless_the_user_chose(monkeypatch):
    for name in MLFLOW_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")
    bound_mlflow()
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"  # the user's choice wins
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == MLFLOW_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, MLFLOW_HTTP_REQUEST_MAX_RETRIES

    assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 2 and MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get() == 1
