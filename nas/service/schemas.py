"""Request and response bodies of the REST API (pydantic), built from the store's records.

Inputs forbid unknown fields, so a misspelt field is a 422 that names it instead of being
silently ignored. Outputs mirror the store's frozen records (``to_dict``) plus formatted
MACs where a human reads them.
"""
from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nas.budget import format_macs
from nas.store import CandidateRecord, SearchRecord, SupernetRecord

from .control import ActionResult
from .launcher import LaunchInfo, LaunchOptions
from nas.summary import FrontPoint, SearchFront, SearchSummary


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _registered(schema: dict[str, Any], what: str, names: list[str]) -> None:
    """Document a field whose values a registry lists, read when the OpenAPI schema is first built
    (create_search checks the value: an unknown one is a 400 that lists them)."""
    schema["description"] = f"{what}: {', '.join(names)}"
    schema["enum"] = names


def _search_metrics() -> list[str]:
    from nas.registry import search_metrics

    return search_metrics()


def _strategies() -> list[str]:
    from nas.strategies import list_strategies

    return list_strategies()


class SupernetCreate(_Input):
    """Register a trained supernet checkpoint (a path on the server's file system)."""

    checkpoint: str = Field(min_length=1, description="path of the supernet checkpoint on the server")
    name: Optional[str] = Field(None, description="name to register under (default: derived from the file)")


class SearchCreate(_Input):
    """A new search over a registered supernet, in state ``created`` until started.

    The fields are the arguments of :func:`nas.search_setup.create_search` (as in
    ``ganas search create``); paths name files on the server.
    """

    supernet: str = Field(min_length=1, description="registered supernet name")
    budgets: Union[str, list[Union[str, int]]] = Field(
        description="MACs budgets: '2G', '500M,1G' or a list such as ['500M', 2000000000]")
    metric: str = Field("fid", min_length=1, json_schema_extra=lambda schema: _registered(
        schema, "metric to optimise (one the supernet's dataset can give)", _search_metrics()))
    strategy: str = Field("evolution", min_length=1, json_schema_extra=lambda schema: _registered(
        schema, "search strategy", _strategies()))
    trials: int = Field(100, ge=1, description="candidates to evaluate")
    seed: int = Field(0, description="random seed of the strategy")
    multi_objective: Optional[bool] = Field(
        None, description="also minimise MACs (a Pareto front); default: true when several budgets are given")
    strategy_settings: dict[str, Any] = Field(default_factory=dict, description="the strategy's own settings")
    batch_size: int = Field(8, ge=1, description="configs asked, evaluated and told together")
    macs_size: Optional[list[int]] = Field(None, min_length=2, max_length=2,
                                           description="[height, width] at which MACs are counted (default: the "
                                                       "dataset's image size)")
    extractor: Optional[str] = Field(None, description="FID/KID feature extractor: inception or a TorchScript path")
    inception_weights: Optional[str] = Field(None, description="path of the FID Inception weights file")
    segmenter: Optional[str] = Field(None, description="path of the mIoU segmenter")
    cache_dir: Optional[str] = Field(None, description="folder of cached real-image statistics")
    max_attempts: int = Field(3, ge=1, description="evaluations of a candidate before it counts as failed")


class LaunchRequest(_Input):
    """How the orchestrator that start/resume spawns runs its workers (the flags of ``ganas search resume``)."""

    workers: int = Field(2, ge=1, description="evaluation workers (Ray actors)")
    executor: str = Field("ray", description="ray, or local (one worker inside the orchestrator, for debugging)")
    ray_address: Optional[str] = Field(None, min_length=1, description="join this Ray cluster instead of starting one")
    lease_seconds: Optional[float] = Field(None, gt=0, description="seconds one evaluation may take before it is "
                                                                   "presumed hung (default 900)")

    @field_validator("executor")
    @classmethod
    def _known_executor(cls, value: str) -> str:
        from nas.executors import EXECUTORS

        if value not in EXECUTORS:
            raise ValueError(f"unknown executor {value!r}; use one of: {', '.join(EXECUTORS)}")
        return value

    def options(self) -> LaunchOptions:
        return LaunchOptions(**self.model_dump())


class ErrorOut(BaseModel):
    detail: str = Field(description="what was wrong and what is allowed")
    error: str = Field(description="the error's type, e.g. NotFoundError")


class ProblemOut(BaseModel):
    loc: list[Union[str, int]]
    msg: str
    type: str


class ValidationErrorOut(ErrorOut):
    errors: list[ProblemOut] = Field(description="each problem of the request, where it is")


class SupernetOut(BaseModel):
    id: int
    name: str
    architecture: str
    hparams: dict[str, Any]
    space: str
    checkpoint: str
    checkpoint_sha256: str
    dataset: dict[str, Any]
    metrics: list[str]
    created_at: float

    @classmethod
    def of(cls, record: SupernetRecord) -> "SupernetOut":
        return cls(**record.to_dict())


class ObjectiveOut(BaseModel):
    metric: str
    direction: str


class SearchOut(BaseModel):
    id: int
    supernet_id: int
    supernet: str
    budgets: list[int]
    budgets_text: list[str]
    objectives: list[ObjectiveOut]
    strategy: str
    strategy_settings: dict[str, Any] = Field(description="the strategy's own settings")
    plan: Optional[dict[str, Any]] = Field(description='how the search runs: {"version": N, "evaluation": ..., '
                                                       '"batch_size": ..., "macs_size": [h, w]}; null if none given')
    seed: int
    trials: int
    max_attempts: int
    state: str
    error: Optional[str]
    owner: Optional[str]
    heartbeat_at: Optional[float]
    owner_expires_at: Optional[float]
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, record: SearchRecord) -> "SearchOut":
        return cls(**record.to_dict(), budgets_text=[format_macs(b) for b in record.budgets])


class CandidateOut(BaseModel):
    id: int
    search_id: int
    config: str
    order: int
    macs: int
    macs_text: str
    params: int
    status: str
    metrics: dict[str, float]
    evaluator: Optional[str]
    error: Optional[str]
    attempts: int
    lease_owner: Optional[str]
    lease_expires_at: Optional[float]
    last_owner: Optional[str]
    queued_at: float
    leased_at: Optional[float]
    finished_at: Optional[float]
    eval_seconds: Optional[float]

    @classmethod
    def of(cls, record: CandidateRecord) -> "CandidateOut":
        return cls(**record.to_dict(), macs_text=format_macs(record.macs))


class CandidatePage(BaseModel):
    total: int = Field(description="candidates matching the filter")
    offset: int
    limit: int
    status: Optional[str]
    items: list[CandidateOut]


class CountsOut(BaseModel):
    queued: int
    leased: int
    done: int
    failed: int
    infeasible: int
    total: int


class BudgetBestOut(BaseModel):
    budget: int
    budget_text: str
    candidate: Optional[CandidateOut]


class LaunchOut(BaseModel):
    pid: int
    command: list[str]
    log_path: str
    started_at: float
    running: bool
    returncode: Optional[int]

    @classmethod
    def of(cls, info: LaunchInfo | None) -> Optional["LaunchOut"]:
        if info is None:
            return None
        return cls(pid=info.pid, command=list(info.command), log_path=info.log_path, started_at=info.started_at,
                   running=info.running, returncode=info.returncode)


class SearchDetail(BaseModel):
    search: SearchOut
    counts: CountsOut
    finished: int
    progress: float = Field(description="finished candidates / trials, capped at 1")
    metric: str
    direction: str
    best_per_budget: list[BudgetBestOut]
    front_size: int
    hypervolume: Optional[float] = Field(description="area (MACs x metric) the front dominates, as `ganas search "
                                                     "status` reports it")
    orchestrator: Optional[LaunchOut] = Field(description="the last orchestrator process this server started")

    @classmethod
    def of(cls, summary: SearchSummary, launch: LaunchInfo | None) -> "SearchDetail":
        counts = summary.counts
        return cls(
            search=SearchOut.of(summary.search), counts=CountsOut(**counts.to_dict(), total=counts.total),
            finished=summary.finished, progress=summary.progress, metric=summary.objective.metric,
            direction=summary.objective.direction,
            best_per_budget=[BudgetBestOut(budget=b.budget, budget_text=format_macs(b.budget),
                                           candidate=None if b.candidate is None else CandidateOut.of(b.candidate))
                             for b in summary.best],
            front_size=len(summary.front.front), hypervolume=summary.front.hypervolume,
            orchestrator=LaunchOut.of(launch))


class FrontPointOut(BaseModel):
    config: str
    macs: int
    params: int
    value: float
    on_front: bool

    @classmethod
    def of(cls, point: FrontPoint) -> "FrontPointOut":
        return cls(config=point.config, macs=point.macs, params=point.params, value=point.value,
                   on_front=point.on_front)


class FrontOut(BaseModel):
    search_id: int
    metric: str
    direction: str
    budgets: list[int]
    points: list[FrontPointOut] = Field(description="every done candidate reporting the metric, proposal order")
    front: list[FrontPointOut] = Field(description="the non-dominated points, ascending MACs")
    hypervolume: Optional[float]

    @classmethod
    def of(cls, search: SearchRecord, front: SearchFront) -> "FrontOut":
        return cls(search_id=search.id, metric=front.metric, direction=front.direction, budgets=list(search.budgets),
                   points=[FrontPointOut.of(p) for p in front.points], front=[FrontPointOut.of(p) for p in front.front],
                   hypervolume=front.hypervolume)


class ActionOut(BaseModel):
    action: str
    search: SearchOut
    orchestrator: Optional[LaunchOut]

    @classmethod
    def of(cls, action: str, result: ActionResult) -> "ActionOut":
        return cls(action=action, search=SearchOut.of(result.search), orchestrator=LaunchOut.of(result.launch))
