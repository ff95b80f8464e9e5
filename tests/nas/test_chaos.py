"""Chaos: processes killed at seeded random moments, and a search that still ends exactly as one never interrupted.

With ``max_attempts: 1`` a single charged attempt would fail a candidate for good, so equality with the
uninterrupted run proves that no crash was counted as an attempt. The orchestrator is killed with SIGKILL
mid-evaluation (several times, resumed each time); ``ganas serve`` is killed while the orchestrator it spawned
runs in its own session; SIGTERM stops a search cleanly (paused, resumable). A Ray worker actor killed
mid-evaluation is in tests/nas/test_ray_executor.py.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from nas.search_setup import create_search
from nas.store import CandidateStatus, SearchState, Store
from nas.summary import summarize
from nas.workspace import Workspace

ROOT = Path(__file__).parents[2]
SEARCH = dict(budgets=[60_000_000, 80_000_000], metric="ssim", strategy="evolution", trials=12, seed=3, batch_size=4,
              strategy_settings={"population_size": 4}, max_attempts=1)
KILLS = 3


def _ganas(workspace: Path, *args: str, session: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "nas.cli", *args[:1], "--workspace", str(workspace), *args[1:]],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                            start_new_session=session)


def _resume(workspace: Path, search_id: int) -> subprocess.Popen:
    return _ganas(workspace, "search", "resume", str(search_id), "--executor", "local", "--quiet")


def _finish(process: subprocess.Popen, expected: int = 0) -> str:
    output = process.communicate(timeout=300)[0].decode(errors="replace")
    assert process.returncode == expected, output
    return output


def _outcome(store: Store, search_id: int) -> tuple:
    """What a search ended with: each candidate's config, status and metrics in proposal order, and the front."""
    candidates = [(c.config, c.status, dict(c.metrics)) for c in store.candidates(search_id)]
    return candidates, [p.config for p in summarize(store, search_id).front.front]


def _wait_for(condition, timeout: float = 240.0, step: float = 0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def chaos_supernet(tmp_path_factory):
    """A workspace of this module's own: its many searches stay out of the shared one."""
    from tests.nas.conftest import build_registered_supernet

    return build_registered_supernet(tmp_path_factory.mktemp("chaos"))


@pytest.fixture(scope="module")
def reference(chaos_supernet):
    """The uninterrupted run, in a process of its own as every run below."""
    ws = Workspace(chaos_supernet.workspace)
    with Store(ws.database_url) as store:
        search = create_search(store, chaos_supernet.name, **SEARCH)
    _finish(_resume(ws.root, search.id))
    with Store(ws.database_url) as store:
        assert store.get_search(search.id).state == SearchState.DONE
        outcome = _outcome(store, search.id)
    assert sum(1 for _, status, _ in outcome[0] if status == CandidateStatus.DONE) >= 10 and outcome[1]
    return outcome


@pytest.mark.slow
def test_orchestrator_killed_at_random_moments_ends_as_the_uninterrupted_run(chaos_supernet, reference):
    rng = random.Random(2024)
    ws = Workspace(chaos_supernet.workspace)
    with Store(ws.database_url) as store:
        search = create_search(store, chaos_supernet.name, **SEARCH)
        in_flight: list[str] = []  # candidates leased when their orchestrator died
        kills = 0
        while kills < KILLS and store.count_candidates(search.id).done + 3 < SEARCH["trials"]:
            target = store.count_candidates(search.id).done + rng.randint(1, 2)  # a random candidate of the run
            process = _resume(ws.root, search.id)
            _wait_for(lambda: store.count_candidates(search.id).done >= target
                      and store.candidates(search.id, CandidateStatus.LEASED))
            time.sleep(rng.uniform(0.0, 0.05))  # at a random point of its evaluation
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            leased = [c.config for c in store.candidates(search.id, CandidateStatus.LEASED)]
            kills += bool(leased)  # a kill between two leases does not count
            in_flight += leased
            assert store.get_search(search.id).state == SearchState.RUNNING  # nobody cleaned up: a real crash
        assert in_flight, "no kill landed while a candidate was being evaluated"
        _finish(_resume(ws.root, search.id))
        assert store.get_search(search.id).state == SearchState.DONE
        assert _outcome(store, search.id) == reference
        finished = store.candidates(search.id)
        assert all(c.attempts == 1 for c in finished if c.status == CandidateStatus.DONE)  # no kill was charged
        assert all(store.find_candidate(search.id, config).lost >= 1 for config in in_flight)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(port: int, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST" if body is not None else "GET",
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


@pytest.mark.slow
def test_killing_ganas_serve_leaves_its_orchestrator_running(chaos_supernet, reference):
    ws = Workspace(chaos_supernet.workspace)
    port = _free_port()
    server = _ganas(ws.root, "serve", "--port", str(port), session=True)
    try:
        _wait_for(lambda: _answers(port), timeout=180, step=0.3)
        body = {**SEARCH, "supernet": chaos_supernet.name, "budgets": ["60M", "80M"]}
        search_id = _api(port, "/api/searches", body)["id"]
        started = _api(port, f"/api/searches/{search_id}/start", {"executor": "local", "workers": 1})
        orchestrator = started["orchestrator"]["pid"]
        with Store(ws.database_url) as store:
            _wait_for(lambda: store.count_candidates(search_id).done >= 2)
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            finished = _wait_for(lambda: (s := store.get_search(search_id)).state == SearchState.DONE
                                 and s.owner is None, timeout=300, step=0.2)  # done, and its claim released
            assert finished and _outcome(store, search_id) == reference
        _wait_for(lambda: not _alive(orchestrator), timeout=60, step=0.2)  # then it exited by itself
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()


def _answers(port: int) -> bool:
    try:
        _api(port, "/api/searches")
        return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of a dead parent is reaped by init; one still listed counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_stops_the_search_paused_and_resumable(chaos_supernet, reference):
    """``ganas search resume`` told to end: the in-process worker finishes its evaluation, nothing is left leased or
    failed, the exit status is 143 with one line saying how to continue (a Ray worker's evaluation is handed back
    instead: tests/nas/test_orchestrator.py)."""
    ws = Workspace(chaos_supernet.workspace)
    with Store(ws.database_url) as store:
        search = create_search(store, chaos_supernet.name, **SEARCH)
        process = _resume(ws.root, search.id)
        _wait_for(lambda: store.count_candidates(search.id).done >= 2 and store.candidates(search.id, "leased"))
        process.send_signal(signal.SIGTERM)
        output = _finish(process, 143)
        assert f"stopped by SIGTERM; search {search.id} is paused" in output and "Traceback" not in output
        stopped = store.get_search(search.id)
        assert (stopped.state, stopped.owner, stopped.error) == (SearchState.PAUSED, None, None)
        counts = store.count_candidates(search.id)
        assert counts.leased == 0 and counts.failed == 0 and 2 <= counts.done < SEARCH["trials"]
        _finish(_resume(ws.root, search.id))
        assert store.get_search(search.id).state == SearchState.DONE
        assert _outcome(store, search.id) == reference
