"""Immutable records the store returns, and the vocabulary of states they use.

Callers never see ORM objects: every read returns frozen dataclasses whose JSON fields are
:class:`FrozenDict` / tuples, so a record can be cached, shared between threads, pickled to a
Ray actor or serialised to JSON without anyone changing what the database said.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, Generic, Mapping, TypeVar

from ..fields import INT64_MAX, shown
from ..objectives import Objective
from .errors import InvalidValueError

MAX_CONFIG_LENGTH = 512  # the width of the config column
MAX_NAME_LENGTH = 255
# Lost leases (its worker or the orchestrator died under it) a candidate or finalize job survives before it is
# failed for good. They are not attempts; the bound only stops a config that kills its worker every time.
LOST_LEASES_LIMIT = 10


class SearchState(str, Enum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"
    FAILED = "failed"


class CandidateStatus(str, Enum):
    QUEUED = "queued"
    LEASED = "leased"
    DONE = "done"
    FAILED = "failed"
    INFEASIBLE = "infeasible"


class FinalStatus(str, Enum):
    """A finalize job: queued, leased to a worker, done (fine-tuned, measured, exported) or failed for good."""

    QUEUED = "queued"
    LEASED = "leased"
    DONE = "done"
    FAILED = "failed"


# The search lifecycle: state -> states it may move to (setting the current state is a no-op).
# A failed search may be resumed; done and cancelled are final.
SEARCH_TRANSITIONS: dict[SearchState, frozenset[SearchState]] = {
    SearchState.CREATED: frozenset({SearchState.RUNNING, SearchState.CANCELLED, SearchState.FAILED}),
    SearchState.RUNNING: frozenset({SearchState.PAUSED, SearchState.CANCELLED, SearchState.DONE,
                                    SearchState.FAILED}),
    SearchState.PAUSED: frozenset({SearchState.RUNNING, SearchState.CANCELLED}),
    SearchState.FAILED: frozenset({SearchState.RUNNING, SearchState.CANCELLED}),
    SearchState.DONE: frozenset(),
    SearchState.CANCELLED: frozenset(),
}

# Statuses a candidate may be added with: queued for evaluation, or rejected up front (over budget).
ADDABLE_STATUSES = (CandidateStatus.QUEUED, CandidateStatus.INFEASIBLE)

def _enum_value(enum: type[Enum], value: Any, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InvalidValueError(f"{what} {value!r} is not one of: {allowed}") from None


def search_state(value: Any) -> SearchState:
    return _enum_value(SearchState, value, "search state")


def candidate_status(value: Any) -> CandidateStatus:
    return _enum_value(CandidateStatus, value, "candidate status")


class FrozenDict(dict):
    """A dict that refuses mutation; still JSON-serialisable, picklable and hashable."""

    __slots__ = ()

    def _immutable(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("records returned by the store are read-only; copy with dict(...) to change one")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _immutable

    def __reduce__(self):
        return (FrozenDict, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


_SCALARS = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """A deep read-only copy of a JSON value: mappings become FrozenDict, lists tuples."""
    if type(value) in _SCALARS:  # most values (a metric, a width): no abstract-class check, which is slow
        return value
    if isinstance(value, Mapping):
        return FrozenDict({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The plain JSON form of a record value (dicts, lists, enum values)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Objective):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable form (for the REST service, MLflow and the dashboard)."""
        return {f.name: thaw(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InvalidValueError(f"{what} must be a non-empty string without surrounding spaces, got {value!r}")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidValueError(f"{what} is {len(value)} characters long; at most {MAX_NAME_LENGTH} are allowed")
    return value


def check_count(value: Any, what: str, minimum: int = 0, maximum: int = INT64_MAX) -> int:
    """An integer in [minimum, maximum]: by default what a 64-bit column holds."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidValueError(f"{what} must be an integer >= {minimum} and <= {maximum:,}, got {shown(value)}")
    return int(value)


def check_seconds(value: Any, what: str, positive: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise InvalidValueError(f"{what} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)


def check_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Metric values as a plain dict; NaN, inf and non-numbers are refused (report a failure instead)."""
    values = {str(k): v for k, v in dict(metrics).items()}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidValueError(f"metric {name!r} = {value!r} is not a finite number; report a failed "
                                    "evaluation instead")
    return values


def check_json(value: Any, what: str) -> Any:
    """A plain JSON copy of ``value`` (the caller's object is not kept); NaN and inf are refused."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"{what} must be JSON data (no NaN/inf): {exc}") from None


def check_plan(value: Any) -> dict[str, Any] | None:
    """A search plan: None, or a JSON object whose integer ``version`` (>= 1) says how to read the rest."""
    if value is None:
        return None
    plan = check_json(value, "search plan")
    version = plan.get("version") if isinstance(plan, dict) else None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidValueError(f"a search plan must be a JSON object with an integer version >= 1, got {value!r}")
    return plan


def check_sha256(value: Any) -> str:
    digest = str(value).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise InvalidValueError(f"checkpoint_sha256 must be 64 hex digits, got {value!r}")
    return digest


@dataclass(frozen=True)
class UnreadableRow:
    """A row of a table that cannot be turned into a record: which one, and why."""

    table: str  # "search", "supernet"
    id: int
    reason: str

    def describe(self) -> str:
        return (f"{self.table} {self.id} cannot be read from the store ({self.reason}); it is left out of listings: "
                "correct or delete that row of the database")


R = TypeVar("R")


@dataclass(frozen=True)
class Listing(Generic[R]):
    """The records of a listing, and the rows it left out because they cannot be read."""

    records: tuple[R, ...]
    unreadable: tuple[UnreadableRow, ...] = ()


@dataclass(frozen=True)
class NewCandidate:
    """A proposal to add to a search: its config string, closed-form cost and proposal order.

    ``status`` is ``queued`` (to be evaluated) or ``infeasible`` (rejected before dispatch, e.g.
    over every budget; ``reason`` says why). ``order=None`` appends after the search's last one.
    """

    config: str
    macs: int
    params: int
    status: CandidateStatus | str = CandidateStatus.QUEUED
    order: int | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        config = self.config
        if not isinstance(config, str) or not config or config != config.strip() or " " in config:
            raise InvalidValueError(f"candidate config must be a non-empty string without spaces, got {config!r}")
        if len(config) > MAX_CONFIG_LENGTH:
            raise InvalidValueError(f"candidate config is {len(config)} characters; at most {MAX_CONFIG_LENGTH}")
        check_count(self.macs, f"MACs of {config}")
        check_count(self.params, f"params of {config}")
        status = candidate_status(self.status)
        if status not in ADDABLE_STATUSES:
            raise InvalidValueError(f"candidate {config} cannot be added as {status.value!r}; "
                                    f"allowed: {', '.join(s.value for s in ADDABLE_STATUSES)}")
        object.__setattr__(self, "status", status)
        if self.order is not None:
            check_count(self.order, f"order of {config}")

    @classmethod
    def coerce(cls, value: Any) -> "NewCandidate":
        """Accept a NewCandidate or a tuple ``(config, macs, params[, status[, order[, reason]]])``."""
        if isinstance(value, NewCandidate):
            return value
        if isinstance(value, (tuple, list)) and 3 <= len(value) <= 6:
            return cls(*value)
        raise InvalidValueError(f"candidate {value!r} is not (config, macs, params, status, order)")


@dataclass(frozen=True)
class SupernetRecord(_Record):
    """A registered supernet: how to rebuild it, where its weights are and what it was trained on."""

    id: int
    name: str
    architecture: str
    hparams: FrozenDict
    space: str
    checkpoint: str
    checkpoint_sha256: str
    dataset: FrozenDict
    metrics: tuple[str, ...]
    created_at: float
    teacher: FrozenDict | None = None  # nas.teacher.TeacherInfo as a dict: the reference every subnet is shown against


@dataclass(frozen=True)
class SearchRecord(_Record):
    """A search over one supernet: budgets, objectives, strategy, lifecycle and orchestrator claim."""

    id: int
    supernet_id: int
    supernet: str
    budgets: tuple[int, ...]
    objectives: tuple[Objective, ...]
    strategy: str
    strategy_settings: FrozenDict  # the strategy's own settings only
    plan: FrozenDict | None  # how the search runs, ``{"version": N, ...}`` (nas.search_setup.SearchPlan), or None
    seed: int
    trials: int
    max_attempts: int
    state: SearchState
    error: str | None
    owner: str | None
    heartbeat_at: float | None
    owner_expires_at: float | None
    created_at: float
    updated_at: float
    teacher: FrozenDict | None = None  # the teacher's figures on the search split: {"metrics", "evaluator", "split"}

    @property
    def multi_objective(self) -> bool:
        """Several objectives give a Pareto front; one objective is optimised under each budget."""
        return len(self.objectives) > 1


@dataclass(frozen=True)
class CandidateRecord(_Record):
    """One config of a search, its cost, its evaluation and its lease (times are Unix seconds).

    ``attempts`` counts the leases charged to it: each lease counts while it runs, and stays counted when
    the evaluation failed or its lease expired; a lease lost because its worker or the orchestrator died
    (or handed back on a stop) moves to ``lost`` instead (at most :data:`LOST_LEASES_LIMIT`).
    ``lease_owner`` is set only while leased; ``last_owner`` is the holder of the last lease that ended
    (who evaluated it, or whose lease lapsed: a re-queued candidate goes back to that owner first);
    ``error`` is the last failure, or why infeasible.
    """

    id: int
    search_id: int
    config: str
    order: int
    macs: int
    params: int
    status: CandidateStatus
    metrics: FrozenDict
    evaluator: str | None
    error: str | None
    attempts: int
    lease_owner: str | None
    lease_expires_at: float | None
    last_owner: str | None
    queued_at: float
    leased_at: float | None
    finished_at: float | None
    eval_seconds: float | None
    lost: int = 0  # leases lost to a dead worker or orchestrator, or handed back: not attempts


@dataclass(frozen=True)
class CandidateCounts(_Record):
    """How many candidates of a search are in each status."""

    queued: int = 0
    leased: int = 0
    done: int = 0
    failed: int = 0
    infeasible: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.leased + self.done + self.failed + self.infeasible

    @property
    def unfinished(self) -> int:
        return self.queued + self.leased


@dataclass(frozen=True)
class AddResult:
    """What :meth:`Store.add_candidates` did: every record in input order, split into new and known."""

    records: tuple[CandidateRecord, ...]
    added: tuple[CandidateRecord, ...]
    existing: tuple[CandidateRecord, ...]


@dataclass(frozen=True)
class NewFinal:
    """A config of a search to finalize: fine-tune for ``steps`` with ``settings``; ``budget`` it was chosen for."""

    config: str
    macs: int
    params: int
    steps: int
    budget: int | None = None
    settings: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.config, str) or not self.config or len(self.config) > MAX_CONFIG_LENGTH:
            raise InvalidValueError(f"config must be a non-empty string of at most {MAX_CONFIG_LENGTH} characters")
        check_count(self.macs, "macs")
        check_count(self.params, "params")
        check_count(self.steps, "steps", 1, 2**31 - 1)
        if self.budget is not None:
            check_count(self.budget, "budget", 1)


@dataclass(frozen=True)
class FinalRecord(_Record):
    """A finalize job and, once done, the final model: figures before/after fine-tuning and the teacher's, all on
    the held-out split, latencies measured side by side, export files (relative to the workspace)."""

    id: int
    search_id: int
    config: str
    budget: int | None
    steps: int
    settings: FrozenDict
    macs: int
    params: int
    status: FinalStatus
    before: FrozenDict
    after: FrozenDict
    teacher: FrozenDict
    evaluator: str | None
    split: str | None
    latency_ms: float | None
    teacher_latency_ms: float | None
    files: FrozenDict  # kind (checkpoint, onnx, pt2) -> path relative to the workspace
    export_errors: FrozenDict
    model_uri: str | None
    error: str | None
    attempts: int
    lease_owner: str | None
    lease_expires_at: float | None
    last_owner: str | None
    created_at: float
    leased_at: float | None
    finished_at: float | None
    seconds: float | None
    lost: int = 0  # leases lost to a dead worker or finalizer, or handed back: not attempts
