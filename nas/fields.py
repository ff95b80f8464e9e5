"""The rules for the numbers a user gives a search or a run, and the one error type that names the field.

Each rule is checked where the value becomes a record (``nas.search_setup.create_search``, the run settings
``OrchestratorSettings`` / ``FinalizeSettings`` and the service's launch options), so the CLI and the REST API
refuse the same values with the same message before anything is written; they only translate the field's
name (``--batch-size`` on the command line, ``batch_size`` in a JSON body answered with 422). The bounds are
also what the store can hold: its counts are 32-bit integers on PostgreSQL and its MACs 64-bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from foundation.errors import GanasError

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
SEED_MAX = 2**32 - 1  # NumPy's and Optuna's samplers take seeds in [0, 2**32)
MAX_WORKERS = 1024  # Ray actors one orchestrator or finalizer starts, each holding a copy of the supernet
MAX_IMAGE_SIDE = 65536  # pixels per side of the resolution MACs are counted at


class FieldError(GanasError):
    """A field of a search or run request with a value ganas refuses.

    ``field`` names it as a REST request body does (``batch_size``, ``metric_options.kid_subsets``); the
    message says what is wrong and what is allowed, and starts with the field's name when it can.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def renamed(self, name: str) -> str:
        """The message with the field called ``name`` (a command-line flag, say)."""
        message = str(self)
        if message.startswith(self.field + " "):
            return name + message[len(self.field):]
        return f"{name}: {message}"


def shown(value: Any) -> str:
    """A value for a message: its repr, or its size when it is too long to print (a 1000-digit integer)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        digits = int(abs(value).bit_length() * math.log10(2)) + 1  # exact or one too many
        digits -= abs(value) < 10 ** (digits - 1)
        return f"a {'negative ' if value < 0 else ''}{digits}-digit integer"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class WholeField:
    """An integer field within [low, high]."""

    name: str
    low: int
    high: int

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            allowed = (f"a positive integer (at most {self.high:,})" if self.low == 1
                       else f"an integer from {self.low:,} to {self.high:,}")
            raise FieldError(self.name, f"{self.name} must be {allowed}, got {shown(value)}")
        return int(value)


@dataclass(frozen=True)
class SecondsField:
    """A duration in seconds: finite and positive."""

    name: str

    def check(self, value: Any) -> float:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value <= 0:
            raise FieldError(self.name, f"{self.name} must be a finite number of seconds > 0, got {shown(value)}")
        return float(value)


# a search
TRIALS = WholeField("trials", 1, INT32_MAX)
BATCH_SIZE = WholeField("batch_size", 1, INT32_MAX)
MAX_ATTEMPTS = WholeField("max_attempts", 1, INT32_MAX)
SEED = WholeField("seed", 0, SEED_MAX)
MACS_SIDE = WholeField("macs_size", 1, MAX_IMAGE_SIDE)
# a run of a search (orchestrator) or of its finalize
WORKERS = WholeField("workers", 1, MAX_WORKERS)
THREADS_PER_WORKER = WholeField("threads_per_worker", 1, 4096)
LEASE_SECONDS = SecondsField("lease_seconds")
CLAIM_SECONDS = SecondsField("claim_seconds")
STEPS = WholeField("steps", 1, INT32_MAX)
FINETUNE_BATCH_SIZE = WholeField("batch_size", 1, 65536)
LATENCY_RUNS = WholeField("latency_runs", 1, 100_000)


def check_optional(rule: WholeField | SecondsField, value: Any) -> Any:
    """``rule``'s check, letting None (the default) through."""
    return None if value is None else rule.check(value)
