"""Starting a search's processes, one at a time per search: its orchestrator, or its finalizer.

An orchestrator is a separate process (``python -m nas.cli search --workspace W resume N``): it
claims the search in the store, heartbeats, and stops by itself when it sees the search
paused or cancelled. A finalizer (``... search --workspace W finalize N --steps S ...``) claims
the search the same way while it fine-tunes and exports the chosen subnets. The launcher only
spawns them, keeps the :class:`subprocess.Popen` handle and appends the output to
``<workspace>/searches/<N>/orchestrator.log`` (``finalize.log`` for a finalizer). It refuses a
second process for a search while one is alive: either a process this launcher started that has
not exited, or a live claim in the store (which also covers processes started elsewhere). They run
in their own session, so stopping the server does not stop them. They open the server's store: its
URL travels in ``$GANAS_STORE_URL`` (not on the command line, where a password would show in the
process list and in the API's ``command``).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence, Union

from nas import fields
from nas.budget import Budgets
from nas.executors import check_executor
from nas.finalize.runner import check_recipe
from nas.store import SearchRecord, Store
from nas.workspace import STORE_ENV_VAR, Workspace

from .errors import LaunchError, OrchestratorRunningError

LOG_NAME = "orchestrator.log"
FINALIZE_LOG_NAME = "finalize.log"


@dataclass(frozen=True)
class LaunchOptions:
    """How an orchestrator runs its workers: the flags of ``ganas search resume``."""

    workers: int = 2
    executor: str = "ray"  # ray, or local (one worker in the orchestrator's process)
    ray_address: str | None = None  # join an existing Ray cluster instead of starting one
    lease_seconds: float | None = None  # how long one evaluation may take before it is presumed hung
    threads_per_worker: int | None = None  # None: this machine's cores // workers
    job = "orchestrator"
    log_name = LOG_NAME

    def __post_init__(self) -> None:  # the rules of ganas search resume's flags, before a process is spawned
        fields.WORKERS.check(self.workers)
        check_executor(self.executor)
        fields.check_optional(fields.LEASE_SECONDS, self.lease_seconds)
        fields.check_optional(fields.THREADS_PER_WORKER, self.threads_per_worker)

    def arguments(self, search_id: int) -> list[str]:
        """The ``ganas search`` subcommand and flags: ``resume ID ...`` without a progress bar."""
        arguments = ["resume", str(search_id), "--workers", str(self.workers), "--executor", self.executor, "--quiet"]
        if self.ray_address is not None:
            arguments += ["--ray-address", self.ray_address]
        if self.lease_seconds is not None:
            arguments += ["--lease-seconds", repr(float(self.lease_seconds))]
        if self.threads_per_worker is not None:
            arguments += ["--threads-per-worker", str(self.threads_per_worker)]
        return arguments


@dataclass(frozen=True)
class FinalizeOptions:
    """What a finalizer fine-tunes and how it runs its workers: the flags of ``ganas search finalize``.

    No budget, front or config: the best subnet under each of the search's budgets (as the CLI).
    """

    steps: int = 1000
    budgets: tuple[int, ...] = ()
    front: bool = False
    configs: tuple[str, ...] = ()
    workers: int = 2
    executor: str = "ray"
    ray_address: str | None = None
    threads_per_worker: int | None = None
    recipe: str = "gan-compression"
    job = "finalizer"
    log_name = FINALIZE_LOG_NAME

    def __post_init__(self) -> None:  # the rules of ganas search finalize's flags, before a process is spawned
        fields.STEPS.check(self.steps)
        fields.WORKERS.check(self.workers)
        check_executor(self.executor)
        fields.check_optional(fields.THREADS_PER_WORKER, self.threads_per_worker)
        Budgets(self.budgets)
        check_recipe(self.recipe)

    def arguments(self, search_id: int) -> list[str]:
        arguments = ["finalize", str(search_id), "--steps", str(self.steps)]
        arguments += [part for budget in self.budgets for part in ("--budget", str(budget))]
        arguments += ["--front"] if self.front else []
        arguments += [part for config in self.configs for part in ("--config", config)]
        arguments += ["--workers", str(self.workers), "--executor", self.executor, "--recipe", self.recipe, "--quiet"]
        if self.ray_address is not None:
            arguments += ["--ray-address", self.ray_address]
        if self.threads_per_worker is not None:
            arguments += ["--threads-per-worker", str(self.threads_per_worker)]
        return arguments


JobOptions = Union[LaunchOptions, FinalizeOptions]
CommandFactory = Callable[[int, Workspace, JobOptions], Sequence[str]]


def orchestrator_command(search_id: int, workspace: Workspace, options: JobOptions) -> list[str]:
    """The command of a search's process: ``ganas search resume`` (an orchestrator that drives the search to
    completion) or ``ganas search finalize``, as ``options`` say."""
    return [sys.executable, "-m", "nas.cli", "search", "--workspace", str(workspace.root),
            *options.arguments(search_id)]


@dataclass(frozen=True)
class LaunchInfo:
    """What the service knows about the last orchestrator process it started for a search."""

    search_id: int
    pid: int
    command: tuple[str, ...]
    log_path: str
    started_at: float
    returncode: int | None  # None while running
    job: str = "orchestrator"  # or "finalizer"

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

    def log_path(self, search_id: int, name: str = LOG_NAME) -> Path:
        return self.workspace.search_dir(search_id) / name

    def check_free(self, search_id: int) -> SearchRecord:
        """The search, if no orchestrator or finalizer drives it; else :class:`OrchestratorRunningError`."""
        search = self.store.get_search(search_id)
        info = self.info(search_id)
        if info is not None and info.running:
            stop = ("pause or cancel it first, or wait until it exits" if info.job == "orchestrator"
                    else "wait until it exits")
            raise OrchestratorRunningError(
                f"search {search_id} already has {'an' if info.job == 'orchestrator' else 'a'} {info.job} running "
                f"(pid {info.pid}, log {info.log_path}); {stop}")
        now = self.store.clock()
        if claim_is_live(search, now):
            raise OrchestratorRunningError(
                f"search {search_id} is held by {search.owner!r} (its claim expires in "
                f"{search.owner_expires_at - now:.0f} s); a paused or cancelled search's orchestrator releases it "
                "at its next loop, a dead one's claim expires: try again then")
        return search

    def start(self, search_id: int, options: JobOptions = LaunchOptions(),
              before_spawn: Callable[[SearchRecord], None] | None = None) -> LaunchInfo:
        """Spawn the orchestrator (or, with :class:`FinalizeOptions`, the finalizer) of ``search_id`` unless a
        process of the search is alive.

        ``before_spawn`` runs under the launcher's lock once the search is known to be free (the
        service moves the search to ``running`` there, or checks a finalize), so two concurrent
        starts cannot both pass; what it raises stops the start before anything is written.
        """
        with self._lock:
            search = self.check_free(search_id)
            if before_spawn is not None:
                before_spawn(search)
            command = tuple(str(part) for part in self.command(search_id, self.workspace, options))
            log_path = self.log_path(search_id, options.log_name)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            started_at = time.time()
            with open(log_path, "ab") as log:
                log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} ganas serve starts: {' '.join(command)}\n"
                          .encode())
                log.flush()
                try:
                    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True,
                                               env=self.environment())
                except OSError as exc:
                    raise LaunchError(f"cannot start the {options.job} of search {search_id} ({' '.join(command)}): "
                                      f"{exc}") from None
            info = LaunchInfo(search_id, process.pid, command, str(log_path), started_at, None, options.job)
            self._processes[search_id] = (process, info)
            return info

    def environment(self) -> dict[str, str]:
        """A child's environment: this one's, with the store the server uses (and no other)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop(STORE_ENV_VAR, None)
        if self.workspace.store_url is not None:
            env[STORE_ENV_VAR] = self.workspace.store_url
        return env

    def info(self, search_id: int) -> LaunchInfo | None:
        """The last process started for the search (its exit status reaped if it ended), or None."""
        entry = self._processes.get(search_id)
        if entry is None:
            return None
        process, info = entry
        returncode = process.poll()
        if returncode != info.returncode:
            info = replace(info, returncode=returncode)
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

    def log_tail(self, search_id: int, max_bytes: int = 8192, name: str = LOG_NAME) -> str:
        """The end of the search's orchestrator log, or of another of its logs ('' when there is none)."""
        path = self.log_path(search_id, name)
        if not path.is_file():
            return ""
        with open(path, "rb") as log:
            log.seek(max(0, path.stat().st_size - max_bytes))
            return log.read().decode("utf-8", errors="replace")
