"""Finalize a search: fine-tune the chosen configs on the search's workers, measure them against the teacher on
the held-out split, export them, and record one final model per config (in the store and MLflow's registry).

Jobs are rows of the store leased to workers exactly as candidates are (retried, re-queued when a
worker hangs or dies), so a finalize killed at any moment is resumed by running it again: done jobs
are kept, unfinished ones run again (from their last fine-tuning checkpoint on the same machine). SIGTERM
hands the running jobs back (not counted as attempts) and ends the run; running it again continues.
"""
from __future__ import annotations

import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

from foundation.errors import GanasError
from foundation.files import atomic_write_bytes
from foundation.signals import StopRequest

from .. import fields
from ..budget import format_macs
from ..executors import EXECUTORS, Executor, check_executor, worker_threads
from ..orchestrator.backlog import MlflowBacklog
from ..orchestrator.claim import SearchClaim
from ..orchestrator.dispatcher import Dispatcher, WorkQueue
from ..registry import registered_checkpoint
from ..search_setup import SearchPlan
from ..store import (CandidateStatus, FinalRecord, FinalStatus, NewFinal, SearchRecord, SearchState, Store,
                     SupernetRecord)
from ..summary import summarize
from ..teacher import TeacherInfo
from ..worker import WorkerPayload
from ..workspace import Workspace
from .job import DEFAULT_RECIPE, FinalizeTask, FinalOutcome

FILE_NAMES = {"checkpoint": "subnet.pt", "pt2": "subnet.pt2", "onnx": "subnet.onnx"}


class FinalizeError(GanasError):
    """A finalize that cannot run as asked: nothing was changed in the store."""


@dataclass(frozen=True)
class Prepared:
    """What every check before a finalize yields: the verified teacher and supernet, and the held-out split."""

    teacher: TeacherInfo
    teacher_bytes: bytes
    checkpoint: bytes
    split: str


def check_recipe(name: str) -> None:
    """A FieldError unless ``name`` is one of ``distill.jobs.FINETUNE_RECIPES``."""
    from distill.jobs import FINETUNE_RECIPES

    if name not in FINETUNE_RECIPES:
        raise fields.FieldError("recipe", f"recipe {name!r} is not a fine-tuning recipe; choose one of "
                                f"{', '.join(FINETUNE_RECIPES.names())}")


@dataclass(frozen=True)
class FinalizeSettings:
    """How a finalize runs; checked here (a bad value is a FieldError naming it) before anything is written."""

    steps: int = 1000  # fine-tuning steps per config
    batch_size: int = 1
    workers: int = 2
    executor: str = "ray"
    ray_address: str | None = None
    lease_seconds: float = 3600.0  # a worker silent this long on one job is presumed hung
    claim_seconds: float = 60.0
    mlflow_uri: str | None = None
    model_name: str | None = None  # MLflow registered model name (default ganas-<supernet>)
    threads_per_worker: int | None = None
    latency_runs: int = 10
    recipe: str = "gan-compression"  # a name of distill.jobs.FINETUNE_RECIPES
    progress: bool = True

    def __post_init__(self) -> None:
        check_recipe(self.recipe)
        fields.STEPS.check(self.steps)
        fields.FINETUNE_BATCH_SIZE.check(self.batch_size)
        fields.WORKERS.check(self.workers)
        check_executor(self.executor)
        fields.LEASE_SECONDS.check(self.lease_seconds)
        fields.CLAIM_SECONDS.check(self.claim_seconds)
        fields.LATENCY_RUNS.check(self.latency_runs)
        fields.check_optional(fields.THREADS_PER_WORKER, self.threads_per_worker)
        if self.mlflow_uri is not None:
            from ..tracking_uri import check_tracking_uri

            check_tracking_uri(self.mlflow_uri)  # one that cannot work is refused before anything is written


@dataclass(frozen=True)
class Choice:
    """A config to finalize and the budget it is the best under (None: chosen by hand or from the front)."""

    config: str
    budget: int | None = None


def choose(store: Store, search_id: int, budgets: Sequence[int] = (), front: bool = False,
           configs: Sequence[str] = ()) -> list[Choice]:
    """The configs to finalize: the best under each budget (the search's own by default), the front, or given.

    Every check happens before anything is written: the search must exist and not be running, and
    every config must be a done candidate of it.
    """
    search = store.get_search(search_id)
    if search.state in (SearchState.CREATED, SearchState.RUNNING):
        raise FinalizeError(f"search {search_id} is {search.state.value}; finalize it once it is done or paused "
                            f"(ganas search status {search_id})")
    done = {c.config: c for c in store.candidates(search_id, CandidateStatus.DONE)}
    chosen: dict[str, Choice] = {}
    for config in configs:
        if config not in done:
            raise FinalizeError(f"{config} is not a done candidate of search {search_id}; finalize one of its "
                                f"evaluated configs (ganas search front {search_id})")
        chosen.setdefault(config, Choice(config))
    if front:
        for point in summarize(store, search_id).front.front:
            chosen.setdefault(point.config, Choice(point.config))
    if budgets or not (configs or front):
        from ..pareto import best_per_budget

        objective = summarize(store, search_id).objective
        wanted = list(budgets or search.budgets)
        best = best_per_budget(list(done.values()), wanted, macs=lambda c: c.macs,
                               value=lambda c: c.metrics.get(objective.metric), direction=objective.direction)
        for budget in wanted:
            if best[budget] is None:
                raise FinalizeError(f"no done candidate of search {search_id} fits {format_macs(budget)} MACs")
            chosen.setdefault(best[budget].config, Choice(best[budget].config, int(budget)))
    return list(chosen.values())


class FinalQueue(WorkQueue):
    """A search's finalize jobs: results written under the workspace, then recorded in the store."""

    def __init__(self, store: Store, search: SearchRecord, workspace: Workspace, split: str,
                 settings: FinalizeSettings):
        super().__init__(store, search.id)
        self.search, self.workspace, self.split, self.settings = search, workspace, split, settings

    def lease(self, owner, ttl):
        leased = self.store.lease_finals(self.search_id, owner, 1, ttl)
        return leased[0] if leased else None

    def get(self, item_id):
        return self.store.get_final(item_id)

    def task(self, record: FinalRecord) -> FinalizeTask:
        work_dir = self.workspace.final_dir(self.search_id, record.config) / "training"
        return FinalizeTask(record.id, record.config, record.steps, self.search.seed, str(work_dir),
                            dict(record.settings), self.settings.batch_size, self.settings.latency_runs)

    def complete(self, outcome: FinalOutcome, record_config: str) -> None:
        folder = self.workspace.final_dir(self.search_id, record_config)
        files = {"checkpoint": outcome.checkpoint, **outcome.exports}
        written = {}
        for kind, data in files.items():
            path = atomic_write_bytes(folder / FILE_NAMES[kind], data)
            written[kind] = self.workspace.relative(path)
        self.store.complete_final(outcome.final_id, outcome.worker, before=outcome.before, after=outcome.after,
                                  teacher=outcome.teacher, evaluator=outcome.evaluator, split=self.split,
                                  latency_ms=outcome.latency_ms, teacher_latency_ms=outcome.teacher_latency_ms,
                                  files=written, export_errors=outcome.export_errors, seconds=outcome.seconds)

    def fail(self, item_id, owner, error):
        return self.store.fail_final(item_id, owner, error)

    def requeue_owner(self, owner, reason=None, lost=True):
        return self.store.requeue_finals(self.search_id, owner=owner, reason=reason, lost=lost)

    def requeue_leased(self):
        return self.store.requeue_finals(self.search_id)

    def requeue_expired(self, now):
        return self.store.requeue_finals(self.search_id, expired_before=now)


class Finalizer:
    """Runs the finalize jobs of one search to their end and registers each final model."""

    def __init__(self, store: Store, workspace: Workspace, search_id: int, settings: FinalizeSettings,
                 executor: Executor | None = None, log: Callable[[str], None] = print):
        self.store, self.workspace, self.search_id, self.settings, self.log = store, workspace, search_id, settings, log
        self.search = store.get_search(search_id)
        self.supernet: SupernetRecord = store.get_supernet(self.search.supernet_id)
        self.executor = executor or (EXECUTORS["ray"](settings.ray_address, None) if settings.executor == "ray"
                                     else EXECUTORS[settings.executor]())
        self.mlflow_uri = settings.mlflow_uri or workspace.mlflow_uri
        self.backlog = MlflowBacklog(workspace, search_id)
        self._mlflow_down = False  # after a model MLflow could not take because it did not answer
        self.signals = StopRequest((signal.SIGTERM,))

    @property
    def terminated(self) -> bool:
        """The run ended early because the process was asked to end (SIGTERM): run it again to continue."""
        return self.signals.requested

    def run(self, choices: Sequence[Choice]) -> list[FinalRecord]:
        """Fine-tune, measure and export ``choices``; returns their final records (done, failed for good, or
        queued again when a signal stopped the run)."""
        ready = self.preflight()
        teacher, teacher_bytes, checkpoint, split = ready.teacher, ready.teacher_bytes, ready.checkpoint, ready.split
        items = [self._new_final(c, checkpoint) for c in choices]
        self._probe_mlflow()
        with self.signals:
            finals = self._run(items, checkpoint, teacher, teacher_bytes, split)
        records = [self.store.get_final(f.id) for f in finals]
        return [self._register(r) for r in records]

    def _run(self, items: list[NewFinal], checkpoint: bytes, teacher: TeacherInfo, teacher_bytes: bytes,
             split: str) -> tuple[FinalRecord, ...]:
        claim = SearchClaim(self.store, self.search_id, self.settings.claim_seconds, self.log, self.signals)
        claim.acquire(self.search)
        dispatcher = Dispatcher(self.executor, self.settings.lease_seconds, self.log)
        queue = FinalQueue(self.store, self.search, self.workspace, split, self.settings)
        try:
            finals = self.store.add_finals(self.search_id, items)
            for f in finals:
                recipe = dict(f.settings).get("recipe", DEFAULT_RECIPE)
                if f.status == FinalStatus.DONE and (f.steps, recipe) != (self.settings.steps, self.settings.recipe):
                    self.log(f"{f.config} was finalized before ({f.steps} steps, {recipe} recipe); kept as it is")
            open_ids = {f.id for f in finals if f.status in (FinalStatus.QUEUED, FinalStatus.LEASED)}
            if open_ids:
                names = [f"final{self.search_id}-w{i}" for i in range(min(self.settings.workers, len(open_ids)))]
                payload = WorkerPayload(checkpoint, self.supernet.checkpoint_sha256,
                                        asdict(self.plan.evaluation.located(self.workspace)),
                                        worker_threads(self.settings.threads_per_worker, len(names), self.settings.ray_address),
                                        teacher_bytes, teacher.to_dict())
                self.log(f"finalizing {len(open_ids)} config(s) of search {self.search_id} on {len(names)} worker(s), "
                         f"{self.settings.steps} fine-tuning steps each; figures on the {split} split")
                dispatcher.start(names, payload, queue)
                self.signals.arm()  # again: starting Ray replaced the SIGTERM handler
                dispatcher.run(queue, open_ids, claim.stop_request)
        except (KeyboardInterrupt, SystemExit):
            dispatcher.release_all(queue)
            raise
        finally:
            dispatcher.shutdown()
            claim.release()
        return finals

    @property
    def plan(self) -> SearchPlan:
        return SearchPlan.from_search(self.search)

    def preflight(self) -> Prepared:
        """Every check that needs no worker, before anything is written (the CLI and the service share it): a
        teacher recorded and still the recorded file, the supernet checkpoint likewise, a held-out split."""
        teacher = TeacherInfo.from_dict(self.supernet.teacher)
        if teacher is None:
            raise FinalizeError(f"supernet {self.supernet.name!r} records no teacher to fine-tune from and compare "
                                "with; register it with --teacher FILE (ganas supernet register CHECKPOINT --teacher "
                                "FILE)")
        teacher_bytes = teacher.read_bytes(self.workspace)  # moved or changed: refused before any write
        self._check_recipe(teacher)
        return Prepared(teacher, teacher_bytes, registered_checkpoint(self.supernet, self.workspace),
                        self._held_out_split())

    def _check_recipe(self, teacher: TeacherInfo) -> None:
        """The online recipe trains the teacher on with L1 to the ground truth: paired data, a teacher with weights."""
        if self.settings.recipe != "online":
            return
        if not dict(self.supernet.dataset).get("paired"):
            raise FinalizeError(f"the online recipe trains the teacher on with L1 to the ground truth, but supernet "
                                f"{self.supernet.name!r} was trained on unpaired data; use --recipe gan-compression")
        if teacher.kind != "checkpoint":
            raise FinalizeError(f"the online recipe trains the teacher on, but {teacher.path} is a {teacher.kind} "
                                "program (it runs as it is); use --recipe gan-compression, or register the supernet "
                                "with the teacher's weights (a checkpoint or state dict)")

    def _held_out_split(self) -> str:
        from imagedata import detect_layout, get_layout

        from ..worker import held_out_split

        spec = self.plan.evaluation.located(self.workspace)
        root = Path(spec.data_root)
        layout = get_layout(spec.layout or detect_layout(root).layout)
        try:
            return held_out_split(layout.available_splits(root))
        except GanasError as exc:
            raise FinalizeError(f"{root}: {exc}") from None

    def _new_final(self, choice: Choice, checkpoint: bytes) -> NewFinal:
        candidate = self.store.find_candidate(self.search_id, choice.config)
        return NewFinal(choice.config, candidate.macs, candidate.params, self.settings.steps, choice.budget,
                        settings=finetune_settings(checkpoint, self.supernet, self.settings.recipe))

    def _probe_mlflow(self) -> None:
        from ..tracking_uri import unreachable_reason

        reason = unreachable_reason(self.mlflow_uri)
        if reason is not None:
            self.log(f"MLflow at {self.mlflow_uri} does not answer ({reason}): the final models are kept in the "
                     f"workspace and registered once it answers ({self.backlog.sync_command(self.mlflow_uri)})")

    def _register(self, record: FinalRecord) -> FinalRecord:
        """Log a done final model to MLflow and its Model Registry (once); the store keeps the model URI. When
        MLflow cannot take it, the model is counted in the search's backlog for ``ganas search sync``."""
        if record.status != FinalStatus.DONE or record.model_uri:
            return record
        from ..tracking import log_final_model
        from ..tracking_uri import tracking_answers

        teacher = TeacherInfo.from_dict(self.supernet.teacher)
        name = self.settings.model_name or f"ganas-{self.supernet.name}"
        kept = (f"it is kept in {self.workspace.final_dir(self.search_id, record.config)}; "
                f"`{self.backlog.sync_command(self.mlflow_uri)}` registers it once MLflow answers")
        if self._mlflow_down:
            self.backlog.add(self.mlflow_uri)
            self.log(f"MLflow does not answer: final model {record.config} not registered; {kept}")
            return record
        try:
            uri = log_final_model(self.mlflow_uri, self.workspace.mlflow_artifacts, self.search_id, record,
                                  self.workspace.absolute(record.files["onnx"]), name,
                                  teacher.macs if teacher else None)
        except Exception as exc:  # the store keeps the model; MLflow is the audit log
            self._mlflow_down = not tracking_answers(self.mlflow_uri)  # down: the next models do not wait for it
            self.backlog.add(self.mlflow_uri)
            self.log(f"MLflow could not log the final model {record.config} ({type(exc).__name__}: "
                     f"{str(exc)[:300]}); {kept}")
            return record
        return self.store.set_final_model(record.id, uri)


def finetune_settings(checkpoint: bytes, supernet: SupernetRecord, recipe: str = "gan-compression") -> dict:
    """What a finalize job fine-tunes with: the recipe's name and its settings. GAN Compression's are the
    supernet's own losses when GAN Compression trained it, the defaults for its task otherwise (an OMGD
    supernet); the online recipe's are its defaults (the teacher's own discriminator when it has one)."""
    import io
    import json

    import torch

    from distill.gan_compression import GANCompressionSettings
    from distill.online import OnlineFinetuneSettings

    if recipe == "online":
        return {"recipe": recipe, **json.loads(json.dumps(asdict(OnlineFinetuneSettings())))}
    meta = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True).get("meta") or {}
    losses = dict(meta.get("losses") or {}) if meta.get("method") == "gan-compression" else {}
    task = "paired" if dict(supernet.dataset).get("paired") else "unpaired"
    known = set(GANCompressionSettings.__dataclass_fields__)
    values = {k: v for k, v in losses.items() if k in known} or {"task": task}
    values.update(space=supernet.space, sampling="uniform", fixed_config=None)
    return {"recipe": recipe, **json.loads(json.dumps(asdict(GANCompressionSettings(**values))))}
