"""Request and response bodies of the REST API (pydantic), built from the store's records.

Inputs forbid unknown fields, so a misspelt field is a 422 that names it instead of being
silently ignored. Outputs mirror the store's frozen records (``to_dict``) plus formatted
MACs where a human reads them.
"""
from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from nas.budget import format_macs, parse_budgets
from nas.reference import SearchReference, compare_final, times_fewer
from nas.store import CandidateRecord, FinalRecord, SearchRecord, SupernetRecord
from nas.teacher import TeacherInfo

from .control import ActionResult
from .finalizing import FinalizeStarted
from .launcher import FinalizeOptions, LaunchInfo, LaunchOptions
from .teacher_schemas import TEACHER_NOTE, SearchTeacherOut, TeacherOut, VsTeacherOut, compare_with_teacher
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

    The fields are the arguments of :func:`nas.search_setup.create_search` (as in ``ganas search start``),
    which checks their values (a refused one is a 422 naming it); paths name files on the server. Real-image
    statistics are cached in the workspace.
    """

    supernet: str = Field(min_length=1, description="registered supernet name")
    budgets: Union[str, list[Union[str, int]]] = Field(
        description="MACs budgets: '2G', '500M,1G' or a list such as ['500M', 2000000000]")
    metric: str = Field("fid", min_length=1, json_schema_extra=lambda schema: _registered(
        schema, "metric to optimise (one the supernet's dataset can give)", _search_metrics()))
    strategy: str = Field("evolution", min_length=1, json_schema_extra=lambda schema: _registered(
        schema, "search strategy", _strategies()))
    trials: int = Field(100, description="candidates to evaluate (at least 1)")
    seed: int = Field(0, description="random seed of the strategy, from 0 to 2**32 - 1")
    multi_objective: Optional[bool] = Field(
        None, description="also minimise MACs (a Pareto front); default: true when several budgets are given")
    strategy_settings: dict[str, Any] = Field(default_factory=dict, description="the strategy's own settings")
    batch_size: int = Field(8, description="configs asked, evaluated and told together (at least 1)")
    macs_size: Optional[list[int]] = Field(None, min_length=2, max_length=2,
                                           description="[height, width] at which MACs are counted (default: the "
                                                       "dataset's image size)")
    extractor: Optional[str] = Field(None, description="FID/KID feature extractor: inception or a TorchScript path")
    inception_weights: Optional[str] = Field(None, description="path of the FID Inception weights file")
    segmenter: Optional[str] = Field(None, description="path of the mIoU segmenter (required for miou)")
    max_attempts: int = Field(3, description="failed (or hung) evaluations of a candidate before it counts as failed "
                              "(at least 1); a dead worker or orchestrator costs none")
    metric_options: dict[str, Any] = Field(default_factory=dict, description="options of the metrics for every "
                                           "worker (kid_subset_size, latency_runs, ...)")


class LaunchRequest(_Input):
    """How the orchestrator that start/resume spawns runs its workers (the flags of ``ganas search resume``)."""

    workers: int = Field(2, description="evaluation workers (Ray actors), from 1 to 1024")
    executor: str = Field("ray", description="ray, or local (one worker inside the orchestrator, for debugging)")
    ray_address: Optional[str] = Field(None, min_length=1, description="join this Ray cluster instead of starting one")
    lease_seconds: Optional[float] = Field(None, description="seconds one evaluation may take before it is "
                                                             "presumed hung (default 900; finite, > 0)")
    threads_per_worker: Optional[int] = Field(None, description="torch threads per worker (default: the machine's "
                                                               "cores // workers; set it when several run at once)")

    def options(self) -> LaunchOptions:
        """The launch options, their values checked (a refused one is a 422 naming it)."""
        return LaunchOptions(**self.model_dump())


class FinalizeRequest(_Input):
    """What to finalize (the flags of ``ganas search finalize``): the best subnet under each budget given (none, no
    front and no config: under each of the search's budgets), every front member, and/or configs by name."""

    budgets: Union[str, list[Union[str, int]]] = Field(
        default_factory=list, description="MACs budgets: '2G', '500M,1G' or a list such as ['500M', 2000000000]")
    front: bool = Field(False, description="finalize every member of the Pareto front")
    configs: list[str] = Field(default_factory=list, description="done candidates to finalize, by config string")
    steps: int = Field(1000, description="fine-tuning steps per subnet (at least 1)")
    workers: int = Field(2, description="fine-tuning workers (Ray actors), from 1 to 1024")
    executor: str = Field("ray", description="ray, or local (one worker inside the finalizer, for debugging)")
    ray_address: Optional[str] = Field(None, min_length=1, description="join this Ray cluster instead of starting one")
    threads_per_worker: Optional[int] = Field(None, description="torch threads per worker (default: the machine's "
                                                               "cores // workers; set it when several run at once)")
    recipe: str = Field("gan-compression", description="fine-tuning recipe: gan-compression (a frozen teacher, "
                        "as GAN Compression) or online (the teacher trains on, the subnet learns only from it, as OMGD)")

    def options(self) -> FinalizeOptions:
        """The finalize options, their values checked (a refused one is a 422 naming it)."""
        budgets = () if self.budgets in ("", []) else parse_budgets(self.budgets)
        return FinalizeOptions(self.steps, tuple(budgets), self.front, tuple(self.configs), self.workers,
                               self.executor, self.ray_address, self.threads_per_worker, self.recipe)


class ErrorOut(BaseModel):
    detail: str = Field(description="what was wrong and what is allowed")
    error: str = Field(description="the error's type, e.g. NotFoundError")
    field: Optional[str] = Field(None, description="a 422 for a refused value: the request field it was given in, "
                                                   "e.g. batch_size or metric_options.kid_subsets")


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
    teacher: Optional[TeacherOut] = Field(description="the teacher the supernet was distilled from, as recorded at "
                                                      "registration (null: none recorded)")

    @classmethod
    def of(cls, record: SupernetRecord) -> "SupernetOut":
        return cls(**{**record.to_dict(), "teacher": TeacherOut.of(TeacherInfo.from_dict(record.teacher))})


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
    attempts: int = Field(description="evaluations counted against max_attempts (finished, failed, hung or running)")
    lost: int = Field(0, description="leases lost to a dead worker or orchestrator: not attempts")
    lease_owner: Optional[str]
    lease_expires_at: Optional[float]
    last_owner: Optional[str]
    queued_at: float
    leased_at: Optional[float]
    finished_at: Optional[float]
    eval_seconds: Optional[float]
    vs_teacher: Optional[VsTeacherOut] = Field(None, description="against the search's teacher (null: no teacher "
                                                                 "recorded)")

    @classmethod
    def of(cls, record: CandidateRecord, reference: SearchReference | None = None) -> "CandidateOut":
        return cls(**record.to_dict(), macs_text=format_macs(record.macs),
                   vs_teacher=compare_with_teacher(reference, record.macs, record.params, record.metrics))


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
    job: str = Field(description="orchestrator or finalizer")
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
        return cls(job=info.job, pid=info.pid, command=list(info.command), log_path=info.log_path,
                   started_at=info.started_at, running=info.running, returncode=info.returncode)


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
    orchestrator: Optional[LaunchOut] = Field(description="the last process (orchestrator or finalizer) this server "
                                                          "started for the search")
    teacher: Optional[SearchTeacherOut] = Field(description="the reference every candidate is compared with")
    teacher_value: Optional[float] = Field(description="the teacher's `metric` on the search split")
    teacher_note: Optional[str] = TEACHER_NOTE

    @classmethod
    def of(cls, summary: SearchSummary, launch: LaunchInfo | None, reference: SearchReference) -> "SearchDetail":
        counts = summary.counts
        teacher = reference.teacher
        return cls(
            search=SearchOut.of(summary.search), counts=CountsOut(**counts.to_dict(), total=counts.total),
            finished=summary.finished, progress=summary.progress, metric=summary.objective.metric,
            direction=summary.objective.direction,
            best_per_budget=[BudgetBestOut(budget=b.budget, budget_text=format_macs(b.budget),
                                           candidate=None if b.candidate is None
                                           else CandidateOut.of(b.candidate, reference))
                             for b in summary.best],
            front_size=len(summary.front.front), hypervolume=summary.front.hypervolume,
            orchestrator=LaunchOut.of(launch), teacher=SearchTeacherOut.of_reference(teacher),
            teacher_value=None if teacher is None else teacher.value(summary.objective.metric),
            teacher_note=reference.note)


class FrontPointOut(BaseModel):
    config: str
    macs: int
    params: int
    value: float
    on_front: bool
    vs_teacher: Optional[VsTeacherOut] = Field(None, description="against the teacher, on the front's metric")

    @classmethod
    def of(cls, point: FrontPoint, metric: str = "", reference: SearchReference | None = None) -> "FrontPointOut":
        return cls(config=point.config, macs=point.macs, params=point.params, value=point.value,
                   on_front=point.on_front,
                   vs_teacher=compare_with_teacher(reference, point.macs, point.params, {metric: point.value}))


class FrontOut(BaseModel):
    search_id: int
    metric: str
    direction: str
    budgets: list[int]
    points: list[FrontPointOut] = Field(description="every done candidate reporting the metric, proposal order")
    front: list[FrontPointOut] = Field(description="the non-dominated points, ascending MACs")
    hypervolume: Optional[float]
    teacher: Optional[SearchTeacherOut] = Field(description="the reference the points are compared with")
    teacher_value: Optional[float] = Field(description="the teacher's `metric` on the search split")
    teacher_note: Optional[str] = TEACHER_NOTE

    @classmethod
    def of(cls, search: SearchRecord, front: SearchFront, reference: SearchReference) -> "FrontOut":
        def points(items):
            return [FrontPointOut.of(p, front.metric, reference) for p in items]

        teacher = reference.teacher
        return cls(search_id=search.id, metric=front.metric, direction=front.direction, budgets=list(search.budgets),
                   points=points(front.points), front=points(front.front), hypervolume=front.hypervolume,
                   teacher=SearchTeacherOut.of_reference(teacher),
                   teacher_value=None if teacher is None else teacher.value(front.metric), teacher_note=reference.note)


class FinalOut(BaseModel):
    """A finalize job and, once done, the final model: its figures before and after fine-tuning next to the
    teacher's, all on the held-out ``split``, CPU latencies timed side by side, and its files."""

    id: int
    search_id: int
    config: str
    budget: Optional[int] = Field(description="the budget it is the best under (null: chosen from the front or by "
                                              "name)")
    budget_text: Optional[str]
    steps: int
    macs: int
    macs_text: str
    params: int
    status: str = Field(description="queued, leased, done or failed")
    before: dict[str, float] = Field(description="the subnet before fine-tuning")
    after: dict[str, float] = Field(description="the final model")
    teacher: dict[str, float] = Field(description="the teacher, same evaluator and split")
    evaluator: Optional[str]
    split: Optional[str] = Field(description="the held-out split of the figures (val, else test)")
    latency_ms: Optional[float] = Field(description="median CPU latency of the final model")
    teacher_latency_ms: Optional[float]
    speedup: Optional[float] = Field(description="teacher latency / final model latency: x faster")
    vs_teacher: Optional[VsTeacherOut] = Field(description="x fewer MACs and parameters than the supernet's teacher, "
                                                           "and `after` against `teacher` (null: no teacher recorded)")
    files: dict[str, str] = Field(description="kind (checkpoint, onnx, pt2) -> path relative to the workspace; "
                                              "download with GET .../finals/{config}/files/{kind}")
    export_errors: dict[str, float] = Field(description="max |export - PyTorch| per export format")
    model_uri: Optional[str] = Field(description="where MLflow's Model Registry keeps it (models:/NAME/VERSION)")
    error: Optional[str]
    attempts: int
    lost: int = Field(0, description="leases lost to a dead worker or finalizer: not attempts")
    created_at: float
    finished_at: Optional[float]
    seconds: Optional[float]

    @classmethod
    def of(cls, record: FinalRecord, teacher: TeacherInfo | None) -> "FinalOut":
        return cls(**record.to_dict(), budget_text=None if record.budget is None else format_macs(record.budget),
                   macs_text=format_macs(record.macs), vs_teacher=VsTeacherOut.of(compare_final(teacher, record)),
                   speedup=times_fewer(record.teacher_latency_ms, record.latency_ms))


class ChoiceOut(BaseModel):
    config: str
    budget: Optional[int]
    budget_text: Optional[str]


class FinalizeOut(BaseModel):
    """A finalize that was started: what it fine-tunes, and the process (``ganas search finalize``)."""

    search_id: int
    steps: int
    choices: list[ChoiceOut]
    finalizer: LaunchOut

    @classmethod
    def of(cls, search_id: int, steps: int, started: FinalizeStarted) -> "FinalizeOut":
        return cls(search_id=search_id, steps=steps, finalizer=LaunchOut.of(started.launch),
                   choices=[ChoiceOut(config=c.config, budget=c.budget,
                                      budget_text=None if c.budget is None else format_macs(c.budget))
                            for c in started.choices])


class ActionOut(BaseModel):
    action: str
    search: SearchOut
    orchestrator: Optional[LaunchOut]

    @classmethod
    def of(cls, action: str, result: ActionResult) -> "ActionOut":
        return cls(action=action, search=SearchOut.of(result.search), orchestrator=LaunchOut.of(result.launch))
