"""A request to stop, made by a signal and read by a loop at a safe point (training steps, a search's dispatch).

Stopping inside the signal handler could interrupt a checkpoint or a database write half-way, so the
handler only sets a flag; the loop finishes or hands back its work, saves, and returns.
"""
from __future__ import annotations

import signal
import threading
from typing import Any, Iterable


class StopRequest:
    """While entered, ``signals`` set :attr:`requested` (and :attr:`signal_name`) instead of ending the process.

    A second SIGINT raises ``KeyboardInterrupt`` (Ctrl-C twice stops at once). Outside the main thread,
    where Python cannot install handlers, it leaves the signals alone. :meth:`arm` may be called again
    after a library replaced the handlers (``ray.init`` installs its own for SIGTERM).
    """

    def __init__(self, signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)):
        self.signals = tuple(signals)
        self.requested = False
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        self.arm()
        return self

    def arm(self) -> None:
        """Install the handlers (again); the first handlers replaced are the ones put back on exit."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in self.signals:
            previous = signal.signal(sig, self._handle)
            self._previous.setdefault(sig, previous)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
