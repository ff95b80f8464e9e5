"""Who decides: asks the strategy for configs batch by batch, replays the stored batches on resume.

The store is the source of truth. Configs are asked, evaluated and told in fixed-size batches,
so what a strategy proposes never depends on which worker finished first; on restart the
strategy is rebuilt by replaying the stored batches (or, for Optuna, from its study), leased
candidates go back to the queue, and completed ones are never evaluated again. A killed
orchestrator therefore resumes to the same evaluated set and Pareto front as one never killed.
SIGTERM stops it cleanly: the running evaluations are handed back (not counted as attempts), the
search is left paused, and ``ganas search resume`` continues it.
"""
from __future__ import annotations

import signal
from dataclasses import asdict, dataclass
from typing import Callable

from foundation.errors import GanasError, describe_error
from foundation.signals import StopRequest
from supernet.errors import CheckpointError
from supernet.space import format_config, parse_config_numbers
from supernet.spaces import get_space

from .. import fields
from ..budget import format_macs
from ..executors import EXECUTORS, Executor, check_executor, worker_threads
from ..search_setup import SearchPlan, macs_function
from ..store import CandidateRecord, CandidateStatus, NewCandidate, SearchBusyError, SearchState, Store
from ..strategies import Objective, TrialResult, create_strategy
from ..summary import RunningFront, SearchSummary, summarize
from ..reference import reference_of
from ..registry import registered_checkpoint
from ..worker import TeacherTask, WorkerPayload
from ..workspace import Workspace
from .backlog import MlflowBacklog
from .claim import SearchClaim
from .dispatcher import CandidateQueue, Dispatcher
from .reporting import SearchReporter, search_params

FINISHED = (CandidateStatus.DONE, CandidateStatus.FAILED, CandidateStatus.INFEASIBLE)


class ReplayError(GanasError):
    """The stored candidates do not match what the strategy proposes again: the search cannot be resumed."""


@dataclass(frozen=True)
class OrchestratorSettings:
    """How an orchestrator runs a search; checked here (a bad value is a FieldError naming it) before any run."""

    workers: int = 2
    executor: str = "ray"
    ray_address: str | None = None
    lease_seconds: float = 900.0  # a worker silent this long on one candidate is presumed hung
    claim_seconds: float = 60.0  # another orchestrator may take over this long after we stop heart-beating
    mlflow_uri: str | None = None  # None: the workspace's own MLflow
    progress: bool = True
    threads_per_worker: int | None = None

    def __post_init__(self) -> None:
        fields.WORKERS.check(self.workers)
        check_executor(self.executor)
        fields.LEASE_SECONDS.check(self.lease_seconds)
        fields.CLAIM_SECONDS.check(self.claim_seconds)
        fields.check_optional(fields.THREADS_PER_WORKER, self.threads_per_worker)
        if self.mlflow_uri is not None:
            from ..tracking_uri import check_tracking_uri

            check_tracking_uri(self.mlflow_uri)  # one that cannot work is refused before the search changes


class Orchestrator:
    """Runs one search to its end (or until paused, cancelled or killed) and returns its summary."""

    def __init__(self, store: Store, workspace: Workspace, search_id: int, settings: OrchestratorSettings,
                 executor: Executor | None = None, log: Callable[[str], None] = print):
        self.store, self.workspace, self.search_id, self.settings = store, workspace, search_id, settings
        self.log = log
        self.signals = StopRequest((signal.SIGTERM,))
        self.claim = SearchClaim(store, search_id, settings.claim_seconds, log, self.signals)
        self.dispatcher = Dispatcher(executor or _executor(settings), settings.lease_seconds, log)
        self.queue = CandidateQueue(store, search_id, workspace.samples_dir(search_id))
        self.search = store.get_search(search_id)
        self.plan = SearchPlan.from_search(self.search)
        self.supernet = store.get_supernet(self.search.supernet_id)
        self.space = get_space(self.supernet.space)
        self.macs_of = macs_function(self.supernet, self.plan.macs_size)
        self.objectives = [Objective.coerce(o) for o in self.search.objectives]
        self.budgets = list(self.search.budgets)

    @property
    def owner(self) -> str:
        return self.claim.owner

    @property
    def terminated(self) -> bool:
        """The run ended early because the process was asked to end (SIGTERM); the search is resumable."""
        return self.claim.terminated

    def summary(self) -> SearchSummary:
        return summarize(self.store, self.search_id)

    def run(self) -> SearchSummary:
        if self.search.state in (SearchState.DONE, SearchState.CANCELLED):
            return self.summary()
        checkpoint = registered_checkpoint(self.supernet, self.workspace)  # verified before anything changes
        self._check_teacher_metric()
        with self.signals:
            return self._run(checkpoint)

    def _run(self, checkpoint: bytes) -> SearchSummary:
        self.claim.acquire(self.search)
        reporter = None
        try:
            if self.search.state != SearchState.RUNNING:
                self.store.set_search_state(self.search_id, SearchState.RUNNING)
            strategy = self._strategy()
            reporter = self._reporter()
            names = [f"search{self.search_id}-w{i}" for i in range(self.settings.workers)]
            teacher = self._teacher_bytes()
            self.dispatcher.start(names, WorkerPayload(
                checkpoint, self.supernet.checkpoint_sha256, asdict(self.plan.evaluation.located(self.workspace)),
                worker_threads(self.settings.threads_per_worker, self.settings.workers, self.settings.ray_address),
                teacher,
                dict(self.supernet.teacher) if teacher is not None else None), self.queue)
            self.signals.arm()  # again: starting Ray replaced the SIGTERM handler
            if teacher is not None and self.search.teacher is None and not self.terminated:
                self._evaluate_teacher()
            reporter.teacher(reference_of(self.supernet, self.search), self.objectives[0].metric)
            state = self._loop(strategy, reporter)
            if state == SearchState.DONE:
                self.store.set_search_state(self.search_id, SearchState.DONE)
                reporter.finish()
            elif self.terminated:
                self._pause_after_signal()
        except SearchBusyError:
            raise  # another orchestrator took the search over: its state is no longer ours to change
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                self.dispatcher.release_all(self.queue)
                raise
            self.store.set_search_state(self.search_id, SearchState.FAILED, error=describe_error(exc))
            raise
        finally:
            self.dispatcher.shutdown()
            if reporter is not None:
                reporter.close()
            self.claim.release()
        return self.summary()

    def _pause_after_signal(self) -> None:
        """Leave a search stopped by a signal paused (resumable by ``ganas search resume`` or the service)."""
        if self.claim.state() == SearchState.RUNNING:
            self.store.set_search_state(self.search_id, SearchState.PAUSED)
        self.log(f"search {self.search_id} stopped by {self.signals.signal_name}: paused, no evaluation counted as an "
                 f"attempt; continue with: ganas search resume {self.search_id}")

    # -- set-up -------------------------------------------------------------------------------------
    def _check_teacher_metric(self) -> None:
        """A teacher-fidelity metric scores nothing without the teacher: one that moved or changed since
        registration is refused before the search changes (other metrics run without the reference)."""
        from ..registry import needs_teacher
        from ..teacher import TeacherInfo

        metric = self.objectives[0].metric
        if not needs_teacher(metric):
            return
        info = TeacherInfo.from_dict(self.supernet.teacher)
        try:
            if info is None:
                raise CheckpointError(f"supernet {self.supernet.name!r} records none; register it with --teacher "
                                      "FILE")
            info.read_bytes(self.workspace)
        except CheckpointError as exc:
            raise CheckpointError(f"{metric} compares candidates with the supernet's teacher, so the search cannot "
                                  f"run without it: {exc}") from None

    def _teacher_bytes(self) -> bytes | None:
        """The supernet's teacher, verified; a search without one still runs, just not against a reference."""
        from ..teacher import TeacherInfo

        info = TeacherInfo.from_dict(self.supernet.teacher)
        if info is None:
            self.log(f"supernet {self.supernet.name!r} records no teacher: candidates are not compared with one "
                     "(register it with --teacher FILE)")
            return None
        try:
            return info.read_bytes(self.workspace)
        except CheckpointError as exc:  # moved, changed or corrupt
            self.log(f"{exc}; the search runs without the teacher's reference figures")
            return None

    def _evaluate_teacher(self) -> None:
        """The teacher's figures on the search split, with the candidates' evaluator, once per search."""
        outcome = self.dispatcher.run_one(TeacherTask(), self.claim.stop_request)
        if outcome is None:  # SIGTERM: the search stops now and measures the teacher when resumed
            return
        if not outcome.ok:
            self.log(f"the teacher could not be evaluated ({outcome.error[:300]}); the search goes on without it")
            return
        self.search = self.store.set_search_teacher(self.search_id, outcome.metrics, outcome.evaluator,
                                                    self.plan.evaluation.split)
        figures = ", ".join(f"{k} {v:.4g}" for k, v in outcome.metrics.items())
        self.log(f"teacher on {self.plan.evaluation.split}: {figures}")

    def _strategy(self):
        return create_strategy(self.search.strategy, self.space, self.objectives, self.macs_of, self.budgets,
                               self.search.seed, self.plan.strategy, storage=self.store.url,
                               study_name=f"ganas-search-{self.search_id}")

    def _reporter(self) -> SearchReporter:
        return SearchReporter(self.settings.mlflow_uri or self.workspace.mlflow_uri, self.workspace.mlflow_artifacts,
                              self.search_id, search_params(self.search, self.supernet, self.plan),
                              self.workspace.samples_dir(self.search_id), self.log,
                              MlflowBacklog(self.workspace, self.search_id))

    # -- the loop ------------------------------------------------------------------------------------
    def _loop(self, strategy, reporter: SearchReporter) -> SearchState:
        batch, trials = self.plan.batch_size, self.search.trials
        stored = list(self.store.candidates(self.search_id))  # the one full read: replay and the running front
        running = RunningFront.of(self.search, stored)
        position, batch_index = 0, 0
        bar = self._progress(trials, sum(1 for c in stored if c.status in FINISHED))
        try:
            if strategy.keeps_own_state:
                # an Optuna study already holds its trials: finish the stored open ones, then continue
                open_ones = [c for c in stored if c.status not in FINISHED]
                if open_ones:
                    if not self._evaluate(open_ones):
                        return self.claim.state()
                    running.add(self._reread(open_ones))
                pending = set(strategy.pending())
                strategy.tell([_result(c) for c in self.store.candidates(self.search_id)
                               if parse_config_numbers(c.config) in pending])
                bar.update(len(open_ones))
                position = len(stored)
                batch_index = (len(stored) + batch - 1) // batch
            while position < trials:
                if self.claim.stopping():
                    return self.claim.state()
                configs = strategy.ask(min(batch, trials - position))
                if not configs:
                    self.log("the strategy has no new feasible config left: the search is complete")
                    break
                if position < len(stored) and not strategy.keeps_own_state:
                    records = self._replayed(stored, position, configs)
                else:
                    records = self._add(configs, position)
                pending = [r for r in records if r.status not in FINISHED]
                if pending:
                    if not self._evaluate(pending):
                        return self.claim.state()  # paused or cancelled mid-batch: resume replays it
                    records = self._reread(records)
                    running.add(r for r in records if r.id in {p.id for p in pending})
                strategy.tell([_result(r) for r in records])
                position += len(records)
                if pending:
                    reporter.batch(records, batch_index, running)
                    bar.update(len(pending))
                    bar.set_postfix_str(_best_text(running), refresh=False)
                batch_index += 1
        finally:
            bar.close()
        reporter.batch([], batch_index, running, final=True)
        return SearchState.DONE

    def _evaluate(self, records: list[CandidateRecord]) -> bool:
        return self.dispatcher.run(self.queue, {r.id for r in records}, self.claim.stop_request)

    def _reread(self, records: list[CandidateRecord]) -> list[CandidateRecord]:
        return [self.store.get_candidate(r.id) for r in records]

    def _replayed(self, stored: list[CandidateRecord], position: int, configs) -> list[CandidateRecord]:
        expected = stored[position: position + len(configs)]
        got = [format_config(c) for c in configs]
        if [c.config for c in expected] != got:
            raise ReplayError(f"search {self.search_id}: the strategy now proposes {got[:3]}... where the store "
                              f"holds {[c.config for c in expected][:3]}... (was the strategy or its settings "
                              "changed?); start a new search")
        return expected

    def _add(self, configs, position: int) -> list[CandidateRecord]:
        from evaluators.closed_form import closed_form_count

        items = []
        largest = max(self.budgets)
        hparams, size = dict(self.supernet.hparams), tuple(self.plan.macs_size)
        for i, config in enumerate(configs):
            count = closed_form_count(self.supernet.architecture, tuple(config), size, **hparams)
            fits = count.macs <= largest
            reason = None if fits else f"{format_macs(count.macs)} MACs > budget {format_macs(largest)}"
            status = CandidateStatus.QUEUED if fits else CandidateStatus.INFEASIBLE
            items.append(NewCandidate(format_config(config), count.macs, count.params, status, position + i, reason))
        return list(self.store.add_candidates(self.search_id, items).records)

    def _progress(self, trials: int, finished: int):
        from tqdm import tqdm

        return tqdm(total=trials, initial=min(finished, trials), desc=f"search {self.search_id}", unit="cand",
                    disable=not self.settings.progress, dynamic_ncols=True)


def _executor(settings: OrchestratorSettings) -> Executor:
    if settings.executor == "ray":
        return EXECUTORS["ray"](settings.ray_address, None)
    return EXECUTORS[settings.executor]()


def _best_text(running: RunningFront) -> str:
    metric = running.metric
    return "; ".join(f"<={format_macs(b)}: {metric} {c.metrics[metric]:.4g}" if c else f"<={format_macs(b)}: -"
                     for b, c in running.best().items())


def _result(c: CandidateRecord) -> TrialResult:
    config = parse_config_numbers(c.config)
    if c.status == CandidateStatus.DONE:
        return TrialResult(config, c.macs, dict(c.metrics))
    return TrialResult(config, c.macs, {}, feasible=c.status != CandidateStatus.INFEASIBLE, failed=True)
