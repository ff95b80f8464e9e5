"""Reporting to MLflow never holds a search up: records wait out an outage, are logged when MLflow is back, and what
MLflow never got is counted in the search's backlog; closing waits a bounded time."""
import threading
import time

import pytest

from nas.orchestrator.backlog import MlflowBacklog
from nas.orchestrator.reporting import ReportQueue, SearchReporter
from nas.summary import RunningFront
from nas.workspace import Workspace


def _until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class Outage:
    """MLflow as the jobs see it: down until ``back()``."""

    def __init__(self, up=False):
        self.up = threading.Event()
        if up:
            self.up.set()
        self.logged = []

    def job(self, name, refuse=False):
        def run():
            if not self.up.is_set():
                raise ConnectionError("Connection refused")
            if refuse:
                raise ValueError("param changed")
            self.logged.append(name)
        return run


def test_records_held_during_an_outage_are_logged_in_order_when_mlflow_answers_again():
    mlflow, messages, changes = Outage(), [], []
    queue = ReportQueue(messages.append, mlflow.up.is_set, changes.append, retry_seconds=0.05)
    for i in range(5):
        queue.submit(mlflow.job(i))
    _until(lambda: queue.down and queue.unlogged == 5)
    assert mlflow.logged == [] and max(changes) == 5
    mlflow.up.set()
    _until(lambda: mlflow.logged == [0, 1, 2, 3, 4])
    assert queue.close(5) == 0 and changes[-1] == 0 and not queue.down
    assert changes[-7:] == [5, 4, 3, 2, 1, 0, 0]  # counted down as they are logged, then closed
    assert [m.split(" (")[0] for m in messages] == ["MLflow does not answer", "MLflow answers again: the records it "
                                                    "missed are being logged"]


def test_a_record_mlflow_refuses_while_it_answers_is_dropped_and_counted():
    mlflow, messages = Outage(up=True), []
    queue = ReportQueue(messages.append, mlflow.up.is_set)
    for i in range(3):
        queue.submit(mlflow.job(i, refuse=i == 1))
    assert queue.close(5) == 1 and mlflow.logged == [0, 2]
    assert len(messages) == 1 and "refused a record (ValueError: param changed)" in messages[0]


def test_closing_during_an_outage_gives_up_in_bounded_time():
    mlflow = Outage()
    queue = ReportQueue(lambda m: None, mlflow.up.is_set, retry_seconds=600)
    for i in range(3):
        queue.submit(mlflow.job(i))
    _until(lambda: queue.down)
    started = time.monotonic()
    assert queue.close(5) == 3  # one more try, then the rest is left to a sync
    assert time.monotonic() - started < 5 and not queue.thread.is_alive()  # not the 600 s retry wait


def test_a_hung_call_does_not_hold_the_process():
    hang = threading.Event()
    queue = ReportQueue(lambda m: None, lambda: True)
    queue.submit(hang.wait)
    queue.submit(lambda: None)
    started = time.monotonic()
    assert queue.close(0.3) == 2 and time.monotonic() - started < 5  # the daemon thread is left behind
    hang.set()


def test_a_long_outage_keeps_the_newest_records_and_counts_the_oldest():
    mlflow = Outage()
    queue = ReportQueue(lambda m: None, mlflow.up.is_set, retry_seconds=600, max_pending=3)
    for i in range(5):
        queue.submit(mlflow.job(i))
    _until(lambda: queue.down and queue.unlogged == 5)
    assert queue.dropped == 2
    mlflow.up.set()
    assert queue.close(5) == 2 and mlflow.logged == [2, 3, 4]


class FakeTracker:
    """SearchTracker's calls, refused while MLflow is down."""

    mlflow: Outage = None
    calls: list = []

    def __init__(self, uri, artifact_root=None):
        self._check()

    def _check(self):
        if not self.mlflow.up.is_set():
            raise ConnectionError("Connection refused")

    def find_search_run(self, search_id):
        self._check()
        return None

    def start_search(self, search_id, params, run_id=None):
        self._check()
        self.calls.append(("start", search_id))
        return "run-1"

    def log_progress(self, run_id, step, values):
        self._check()
        self.calls.append(("progress", step, values["candidates_done"]))

    def finish(self, run_id, status="FINISHED"):
        self._check()
        self.calls.append(("finish",))


@pytest.fixture
def fake_mlflow(monkeypatch):
    import nas.tracking
    import nas.tracking_uri

    mlflow = Outage()
    FakeTracker.mlflow, FakeTracker.calls = mlflow, []
    monkeypatch.setattr(nas.tracking, "SearchTracker", FakeTracker)
    monkeypatch.setattr(nas.tracking_uri, "tracking_answers", lambda uri: mlflow.up.is_set())
    return mlflow


def _reporter(tmp_path, uri, messages):
    ws = Workspace(tmp_path)
    return SearchReporter(uri, tmp_path / "artifacts", 7, {"seed": 1}, tmp_path, messages.append, MlflowBacklog(ws, 7),
                          retry_seconds=0.05)


def test_a_search_reporter_started_while_mlflow_is_down_opens_its_run_when_it_is_back(tmp_path, fake_mlflow):
    uri, messages = "sqlite:///elsewhere/mlflow.db", []
    reporter = _reporter(tmp_path, uri, messages)
    running = RunningFront("ssim", "maximize", (80_000_000,))
    for done in (2, 4):
        running.done = done
        reporter.batch([], done // 2, running)
    backlog = MlflowBacklog(Workspace(tmp_path), 7)
    _until(lambda: backlog.counts() == {uri: 3})  # the run and two progress records wait for MLflow
    assert backlog.describe() == [f"MLflow: 3 records not logged to {uri}; run ganas search sync 7 --mlflow-uri {uri}"]
    fake_mlflow.up.set()
    _until(lambda: backlog.counts() == {})  # logged while the search runs, not only at its end
    assert ("progress", 4, 4) in FakeTracker.calls  # counted until logged
    reporter.finish()
    assert reporter.close(5) == 0
    assert FakeTracker.calls == [("start", 7), ("progress", 2, 2), ("progress", 4, 4), ("finish",)]
    assert backlog.counts() == {} and not backlog.path.exists()


def test_records_an_earlier_run_missed_stay_in_the_backlog_until_a_sync(tmp_path, fake_mlflow):
    ws, messages = Workspace(tmp_path), []
    MlflowBacklog(ws, 7).set(ws.mlflow_uri, 4)
    fake_mlflow.up.set()
    reporter = _reporter(tmp_path, ws.mlflow_uri, messages)
    reporter.finish()
    assert reporter.close(5) == 4 and FakeTracker.calls == [("start", 7), ("finish",)]
    assert MlflowBacklog(ws, 7).counts() == {ws.mlflow_uri: 4}
    assert messages[-1] == f"MLflow: 4 records of search 7 not logged to {ws.mlflow_uri}; log them with: " \
                           "ganas search sync 7"


def test_the_backlog_of_the_workspaces_own_mlflow_moves_with_the_workspace(tmp_path):
    """Counted under a key, not the absolute URI: a moved workspace's status names its own MLflow."""
    import shutil

    from nas.orchestrator.backlog import MlflowBacklog
    from nas.workspace import Workspace

    old, new = Workspace(tmp_path / "old"), Workspace(tmp_path / "new")
    MlflowBacklog(old, 1).add(old.mlflow_uri, 3)
    MlflowBacklog(old, 1).add("http://mlflow.example:5000", 2)
    shutil.move(old.root, new.root)
    moved = MlflowBacklog(new, 1)
    assert moved.counts() == {new.mlflow_uri: 3, "http://mlflow.example:5000": 2}
    assert moved.describe()[1] == "MLflow: 3 records not logged to " + new.mlflow_uri + "; run ganas search sync 1"
    moved.clear(new.mlflow_uri)
    assert moved.counts() == {"http://mlflow.example:5000": 2}
