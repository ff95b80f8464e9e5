"""Starting orchestrator processes for searches, one at a time per search.

An orchestrator is a separate process (``python -m nas.cli search --workspace W resume N``): it
claims the search in the store, heartbeats, and stops by itself when it sees the search
paused or cancelled. The launcher only spawns it, keeps its :class:`subprocess.Popen` handle
and appends its output to ``<workspace>/searches/<N>/orchestrator.log``. It refuses a second
orchestrator for a search while one is alive: either a process this launcher started that has
not exited, or a live claim in the store (which also covers orchestrators started elsewhere).
Orchestrators run in their own session, so stopping the server does not stop a search.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from nas.store import SearchRecord, Store
from nas.workspace import Workspace

from .errors import LaunchError, OrchestratorRunningError

LOG_NAME = "orchestrator.log"


@dataclass(frozen=True)
class LaunchOptions:
    """How an orchestrator runs its workers: the flags of ``ganas search resume``."""

    workers: int = 2
    executor: str = "ray"  # ray, or local (one worker in the orchestrator's process)
    ray_address: str | None = None  # join an existing Ray cluster instead of starting one
    lease_seconds: float | None = None  # how long one evaluation may take before it is presumed hung


CommandFactory = Callable[[int, Workspace, LaunchOptions], Sequence[str]]


def orchestrator_command(search_id: int, workspace: Workspace, options: LaunchOptions) -> list[str]:
    """The command that drives one search to completion: ``ganas search resume`` without a progress bar."""
    command = [sys.executable, "-m", "nas.cli", "search", "--workspace", str(workspace.root), "resume", str(search_id),
               "--workers", str(options.workers), "--executor", options.executor, "--quiet"]
    if options.ray_address is not None:
        command += ["--ray-address", options.ray_address]
    if options.lease_seconds is not None:
        command += ["--lease-seconds", repr(float(options.lease_seconds))]
    return command


@dataclass(frozen=True)
class LaunchInfo:
    """What the service knows about the last orchestrator process it started for a search."""

    search_id: int
    pid: int
    command: tuple[str, ...]
    log_path: str
    started_at: float
    returncode: int | None  # None while running

    @property
    def running(self) -> bool:
        return self.returncode is None


def claim_is_live(search: SearchRecord, now: float) -> bool:
    """An orchestrator holds the search and its claim has not expired."""
    return search.owner is not None and search.owner_expires_at is not None and search.owner_expires_at > now


class OrchestratorLauncher:
    """Spawns orchestrators and remembers their processes. Thread-safe."""

    def __init__(self, workspace: Workspace, store: Store, command: CommandFactory = orchestrator_command):
        self.workspace = workspace
        self.store = store
        self.command = command
        self._processes: dict[int, tuple[subprocess.Popen, LaunchInfo]] = {}
        self._lock = threading.Lock()

    def log_path(self, search_id: int) -> Path:
        return self.workspace.search_dir(search_id) / LOG_NAME

    def check_free(self, search_id: int) -> SearchRecord:
        """The search, if no orchestrator drives it; else :class:`OrchestratorRunningError`."""
        search = self.store.get_search(search_id)
        info = self.info(search_id)
        if info is not None and info.running:
            raise OrchestratorRunningError(
                f"search {search_id} already has an orchestrator running (pid {info.pid}, log {info.log_path}); "
                "pause or cancel it first, or wait until it exits")
        now = self.store.clock()
        if claim_is_live(search, now):
            raise OrchestratorRunningError(
                f"search {search_id} is held by orchestrator {search.owner!r} (claim expires in "
                f"{search.owner_expires_at - now:.0f} s); a paused or cancelled search's orchestrator releases it "
                "at its next loop, a dead one's claim expires: try again then")
        return search

    def start(self, search_id: int, options: LaunchOptions = LaunchOptions(),
              before_spawn: Callable[[SearchRecord], None] | None = None) -> LaunchInfo:
        """Spawn the orchestrator of ``search_id`` unless one is alive.

        ``before_spawn`` runs under the launcher's lock once the search is known to be free (the
        service moves the search to ``running`` there), so two concurrent starts cannot both pass.
        """
        with self._lock:
            search = self.check_free(search_id)
            if before_spawn is not None:
                before_spawn(search)
            command = tuple(str(part) for part in self.command(search_id, self.workspace, options))
            log_path = self.log_path(search_id)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            started_at = time.time()
            with open(log_path, "ab") as log:
                log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} ganas serve starts: {' '.join(command)}\n"
                          .encode())
                log.flush()
                try:
                    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True,
                                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
                except OSError as exc:
                    raise LaunchError(f"cannot start the orchestrator of search {search_id} ({' '.join(command)}): "
                                      f"{exc}") from None
            info = LaunchInfo(search_id, process.pid, command, str(log_path), started_at, None)
            self._processes[search_id] = (process, info)
            return info

    def info(self, search_id: int) -> LaunchInfo | None:
        """The last process started for the search (its exit status reaped if it ended), or None."""
        entry = self._processes.get(search_id)
        if entry is None:
            return None
        process, info = entry
        returncode = process.poll()
        if returncode != info.returncode:
            info = LaunchInfo(info.search_id, info.pid, info.command, info.log_path, info.started_at, returncode)
            self._processes[search_id] = (process, info)
        return info

    def launches(self) -> dict[int, LaunchInfo]:
        """Every search this launcher started a process for, with its current status."""
        return {search_id: info for search_id in list(self._processes)
                if (info := self.info(search_id)) is not None}

    def process(self, search_id: int) -> subprocess.Popen | None:
        """The Popen handle (for waiting on or signalling the process)."""
        entry = self._processes.get(search_id)
        return None if entry is None else entry[0]

    def log_tail(self, search_id: int, max_bytes: int = 8192) -> str:
        """The end of the search's orchestrator log ('' when there is none)."""
        path = self.log_path(search_id)
        if not path.is_file():
            return ""
        with open(path, "rb") as log:
            log.seek(max(0, path.stat().st_size - max_bytes))
            return log.read().decode("utf-8", errors="replace")
