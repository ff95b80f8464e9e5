import os

import pytest

from foundation import threads
from nas.executors import worker_threads


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)


def test_cores_are_shared_between_the_processes_that_work_at_once(four_cores):
    assert threads.usable_cores() == 4
    assert [threads.threads_per_process(n) for n in (1, 2, 3, 4, 8)] == [4, 2, 1, 1, 1]
    assert threads.threads_per_process(0) == 4


def test_workers_get_their_share_unless_told_or_on_a_joined_cluster(four_cores):
    assert worker_threads(None, 2, None) == 2
    assert worker_threads(3, 2, None) == 3  # the user's choice wins
    assert worker_threads(None, 2, "ray://head:10001") is None  # the nodes' cores are not this machine's


def test_idle_threads_wait_passively_unless_the_user_chose():
    environ = {}
    threads.wait_passively(environ)
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE"}
    environ = {"OMP_WAIT_POLICY": "ACTIVE"}
    threads.wait_passively(environ)
    assert environ == {"OMP_WAIT_POLICY": "ACTIVE"}
