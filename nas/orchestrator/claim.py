"""Who drives a search: one live orchestrator at a time, holding a claim in the store that it heart-beats.

The claim also answers "should I stop?": the search's state (paused or cancelled by any client
of the store) is read at most once a second, so a running batch is not slowed by the check; a stop
requested by a signal to this process (SIGTERM) is answered at once.
"""
from __future__ import annotations

import os
import socket
import time
import uuid
from typing import Callable

from foundation.signals import StopRequest

from ..store import SearchRecord, SearchState, Store
from .dispatcher import Stop

STATE_CHECK_SECONDS = 1.0


def owner_name() -> str:
    """A claim owner unique to this process: ``orchestrator@host:pid:random``."""
    return f"orchestrator@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def dead_local_owner(owner: str) -> bool:
    """True for an owner name of a process on this host that no longer exists."""
    host, _, rest = owner.removeprefix("orchestrator@").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class SearchClaim:
    """This process's claim on one search: acquire, heart-beat, read stop requests, release."""

    def __init__(self, store: Store, search_id: int, claim_seconds: float, log: Callable[[str], None],
                 signals: StopRequest | None = None):
        self.store, self.search_id, self.claim_seconds, self.log = store, search_id, claim_seconds, log
        self.signals = signals or StopRequest(())
        self.owner = owner_name()
        self._last_heartbeat = 0.0
        self._last_check = 0.0
        self._stop_seen: SearchState | None = None

    def acquire(self, search: SearchRecord) -> None:
        """Claim the search; a previous orchestrator on this machine that was killed is taken over at once."""
        if search.owner and dead_local_owner(search.owner):
            self.log(f"taking over from {search.owner}, which is no longer running")
            self.store.release_search(self.search_id, search.owner)
        self.store.claim_search(self.search_id, self.owner, self.claim_seconds)
        self._last_heartbeat = time.monotonic()

    def release(self) -> None:
        self.store.release_search(self.search_id, self.owner)

    def state(self) -> SearchState:
        return SearchState(self.store.get_search(self.search_id).state)

    @property
    def terminated(self) -> bool:
        """This process was asked to end (SIGTERM): hand the work back and leave the search resumable."""
        return self.signals.requested

    def stopping(self) -> bool:
        """Heart-beat if due, then: was the search paused or cancelled, or this process asked to end?"""
        if time.monotonic() - self._last_heartbeat > self.claim_seconds / 4:
            self.store.heartbeat(self.search_id, self.owner, self.claim_seconds)
            self._last_heartbeat = time.monotonic()
        return self.terminated or self.state() in (SearchState.PAUSED, SearchState.CANCELLED)

    def stop_request(self) -> Stop | None:
        """What the dispatcher should do (None: go on); the search's state is read at most once a second."""
        if self.terminated:
            return Stop.HAND_BACK
        now = time.monotonic()
        if now - self._last_check >= STATE_CHECK_SECONDS:
            self._last_check = now
            state = self.state() if self.stopping() else None
            self._stop_seen = {SearchState.PAUSED: Stop.FINISH, SearchState.CANCELLED: Stop.HAND_BACK}.get(state)
        return self._stop_seen
