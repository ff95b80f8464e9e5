"""The Ray executor on the private cluster ganas starts: loopback only, a dead worker actor replaced at once and
not charged, a worker that cannot load failing the search with one clean message. One cluster for the module."""
from __future__ import annotations

import ipaddress
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from nas.orchestrator import Orchestrator, OrchestratorSettings
from nas.search_setup import create_search
from nas.store import CandidateStatus, SearchState, Store
from nas.workspace import Workspace

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads sockets and processes from /proc")

RAY = OrchestratorSettings(workers=1, executor="ray", progress=False, lease_seconds=600)
LOCAL = OrchestratorSettings(workers=1, executor="local", progress=False, lease_seconds=600)


@pytest.fixture(scope="module")
def cluster():
    from nas.executors import start_local_ray

    if ray.is_initialized():
        ray.shutdown()
    start_local_ray(2)
    yield
    ray.shutdown()


def _search(store, fixture, **kw):
    args = dict(budgets=[80_000_000], metric="ssim", strategy="random", trials=4, seed=5, batch_size=2,
                max_attempts=1)
    return create_search(store, fixture.name, **{**args, **kw})


# -- processes and sockets, from /proc ---------------------------------------------------------------------------
def _descendants(root: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _address(hex_address: str) -> ipaddress._BaseAddress:
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # /proc writes each 32-bit word host-order
    address = ipaddress.ip_address(words)
    return getattr(address, "ipv4_mapped", None) or address


def _listeners(pids: set[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every listening TCP socket the processes hold."""
    owner = {inode: pid for pid in pids for inode in _socket_inodes(pid)}
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in owner:  # 0A: LISTEN
                address, port = fields[1].split(":")
                found.append((owner[fields[9]], str(_address(address)), int(port, 16)))
    return found


def _worker_processes() -> list[int]:
    pids = []
    for pid in _descendants(os.getpid()):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::RayWorker"):
                pids.append(pid)
        except OSError:
            continue
    return pids


# -- tests -------------------------------------------------------------------------------------------------------
def test_the_local_cluster_listens_on_loopback_only(cluster):
    @ray.remote
    def pid():
        return os.getpid()

    assert ray.get(pid.remote()) != os.getpid()  # a worker process is up too
    listeners = _listeners(_descendants(os.getpid()))
    assert len({p for p, _, _ in listeners}) >= 3  # GCS, raylet, the driver's and the worker's own servers, agents
    assert [entry for entry in listeners if not ipaddress.ip_address(entry[1]).is_loopback] == []
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}


def test_a_killed_worker_actor_is_replaced_at_once_and_costs_no_attempt(cluster, registered_supernet):
    """kill -9 of the worker's process mid-evaluation: its candidate goes back to the queue uncharged (with
    max_attempts 1) and the search ends as one in-process run never interrupted."""
    ws = Workspace(registered_supernet.workspace)
    killed: dict = {}

    def killer(search_id):
        with Store(ws.database_url) as store:
            deadline = time.time() + 240
            while time.time() < deadline and not killed:
                leased = store.candidates(search_id, CandidateStatus.LEASED)
                workers = _worker_processes()
                if leased and store.count_candidates(search_id).done >= 1 and workers:
                    os.kill(workers[0], signal.SIGKILL)
                    killed.update(config=leased[0].config, pid=workers[0])
                time.sleep(0.02)

    with Store(ws.database_url) as store:
        reference = _search(store, registered_supernet)
        Orchestrator(store, ws, reference.id, LOCAL, log=lambda m: None).run()
        search = _search(store, registered_supernet)
        watcher = threading.Thread(target=killer, args=(search.id,))
        watcher.start()
        log: list[str] = []
        try:
            summary = Orchestrator(store, ws, search.id, RAY, log=log.append).run()
        finally:
            watcher.join()
        assert killed, "the worker process was never seen evaluating"
        assert summary.state == "done" and summary.counts.done == 4 and summary.counts.failed == 0, log
        (victim,) = [c for c in store.candidates(search.id) if c.lost]  # the one in flight when the kill landed
        assert (victim.status, victim.attempts, victim.lost) == (CandidateStatus.DONE, 1, 1)
        assert any(f"{victim.config}: worker search{search.id}-w0 lost: ActorDiedError" in line and "replaced" in line
                   for line in log), log
        assert killed["pid"] not in _worker_processes()
        on_ray = {c.config: c for c in store.candidates(search.id)}
        in_process = {c.config: c for c in store.candidates(reference.id)}
        assert list(on_ray) == list(in_process)  # the same configs, in the same order
        for config, c in on_ray.items():
            assert c.status == in_process[config].status and c.metrics.keys() == in_process[config].metrics.keys()
            assert all(c.metrics[k] == pytest.approx(v, abs=1e-5) for k, v in in_process[config].metrics.items())


def test_a_worker_that_cannot_load_fails_the_search_with_one_clean_message(cluster, tmp_path):
    """A corrupt dataset file found when the worker starts: the stored error is the dataset's own message, with
    its type, not Ray's coloured traceback of a dead actor."""
    from tests.nas.conftest import build_registered_supernet

    fixture = build_registered_supernet(tmp_path, "corrupt")
    for image in (tmp_path / "data").rglob("*.png"):
        image.write_bytes(b"not a png")
    ws = Workspace(fixture.workspace)
    with Store(ws.database_url) as store:
        search = _search(store, fixture)
        with pytest.raises(Exception) as info:
            Orchestrator(store, ws, search.id, RAY, log=lambda m: None).run()
        stored = store.get_search(search.id)
    assert stored.state == SearchState.FAILED
    assert stored.error.startswith(f"WorkerStartError: worker search{search.id}-w0 could not start: DatasetError: ")
    assert "\x1b" not in stored.error and "Traceback" not in stored.error and "ray::" not in stored.error
    assert type(info.value).__name__ == "WorkerStartError" and str(info.value) in stored.error
