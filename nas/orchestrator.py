"""The search orchestrator: asks the strategy for configs, leases them to workers, records results.

The store is the source of truth. Configs are asked, evaluated and told in fixed-size batches,
so what a strategy proposes never depends on which worker finished first; on restart the
strategy is rebuilt by replaying the stored batches (or, for Optuna, from its study), leased
candidates go back to the queue, and completed ones are never evaluated again. A killed
orchestrator therefore resumes to the same evaluated set and Pareto front as one never killed.
"""
from __future__ import annotations

import io
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from foundation.errors import GanasError
from foundation.hashing import bytes_sha256
from supernet.errors import CheckpointError
from supernet.space import format_config, parse_config_numbers
from supernet.spaces import get_space

from .budget import format_macs
from .executors import EXECUTORS, Executor, WorkerPayload
from .pareto import best_per_budget, hypervolume, pareto_front
from .search_setup import SearchPlan, macs_function
from .store import (CandidateRecord, CandidateStatus, LeaseError, NewCandidate, SearchBusyError, SearchRecord,
                    SearchState, Store)
from .strategies import Objective, TrialResult, create_strategy
from .worker import Outcome, Task
from .workspace import Workspace

FINISHED = (CandidateStatus.DONE, CandidateStatus.FAILED, CandidateStatus.INFEASIBLE)
FRONT_LOG_SECONDS = 30.0


class ReplayError(GanasError):
    """The stored candidates do not match what the strategy proposes again: the search cannot be resumed."""


@dataclass(frozen=True)
class OrchestratorSettings:
    workers: int = 2
    executor: str = "ray"
    ray_address: str | None = None
    lease_seconds: float = 900.0  # a worker silent this long on one candidate is presumed hung
    claim_seconds: float = 60.0  # another orchestrator may take over this long after we stop heart-beating
    mlflow_uri: str | None = None
    progress: bool = True
    threads_per_worker: int | None = None


@dataclass
class SearchSummary:
    search_id: int
    state: str
    done: int
    failed: int
    best: dict[int, CandidateRecord | None] = field(default_factory=dict)
    front: list[CandidateRecord] = field(default_factory=list)
    hypervolume: float | None = None


def _owner_name() -> str:
    return f"orchestrator@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _dead_local_owner(owner: str) -> bool:
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


class _Reporter:
    """Runs MLflow reporting on one background thread, in order, so that logging never holds up a batch."""

    def __init__(self, log: Callable[[str], None]):
        import queue
        import threading

        self.log = log
        self.jobs: "queue.Queue" = queue.Queue()
        self.thread = threading.Thread(target=self._work, name="ganas-mlflow", daemon=True)
        self.thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        self.jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception as exc:  # the store keeps the results; MLflow is the audit log
                self.log(f"MLflow logging failed ({type(exc).__name__}: {exc}); the search continues")

    def close(self) -> None:
        """Wait for every submitted report."""
        self.jobs.put(None)
        self.thread.join()


class Orchestrator:
    def __init__(self, store: Store, workspace: Workspace, search_id: int, settings: OrchestratorSettings,
                 executor: Executor | None = None, log: Callable[[str], None] = print):
        self.store, self.workspace, self.search_id, self.settings = store, workspace, search_id, settings
        self.owner = _owner_name()
        self.executor = executor if executor is not None else self._executor()
        self.log = log
        self._last_heartbeat = 0.0
        self._last_state_check = 0.0
        self._stop_seen: SearchState | None = None
        self._logged_front: tuple[str, ...] = ()
        self._front_logged_at = 0.0

    def _executor(self) -> Executor:
        s = self.settings
        if s.executor == "ray":
            return EXECUTORS["ray"](s.ray_address, None)
        return EXECUTORS[s.executor]()

    # -- set-up -------------------------------------------------------------------------------------
    def _load(self) -> None:
        self.search: SearchRecord = self.store.get_search(self.search_id)
        self.plan = SearchPlan.from_search(self.search)
        self.supernet = self.store.get_supernet(self.search.supernet_id)
        self.space = get_space(self.supernet.space)
        self.macs_of = macs_function(self.supernet, self.plan.macs_size)
        self.objectives = [Objective.coerce(o) for o in self.search.objectives]
        self.metric = self.objectives[0]
        self.budgets = list(self.search.budgets)

    def _checkpoint_bytes(self) -> bytes:
        """The registered checkpoint, verified against its recorded hash before anything changes."""
        path = Path(self.supernet.checkpoint)
        if not path.is_file():
            raise CheckpointError(f"supernet {self.supernet.name!r}: checkpoint {path} is missing")
        data = path.read_bytes()
        if bytes_sha256(data) != self.supernet.checkpoint_sha256:
            raise CheckpointError(f"supernet {self.supernet.name!r}: {path} does not match the SHA-256 recorded at "
                                  "registration (corrupt or replaced); register the new file under a new name")
        return data

    def _strategy(self):
        return create_strategy(self.search.strategy, self.space, self.objectives, self.macs_of, self.budgets,
                               self.search.seed, self.plan.strategy, storage=self.store.url,
                               study_name=f"ganas-search-{self.search_id}")

    # -- the run -------------------------------------------------------------------------------------
    def run(self) -> SearchSummary:
        self._load()
        if self.search.state in (SearchState.DONE, SearchState.CANCELLED):
            return self.summary()
        checkpoint = self._checkpoint_bytes()
        if self.search.owner and _dead_local_owner(self.search.owner):
            # the previous orchestrator on this machine is gone (killed): no need to wait for its claim to lapse
            self.log(f"taking over from {self.search.owner}, which is no longer running")
            self.store.release_search(self.search_id, self.search.owner)
        self.store.claim_search(self.search_id, self.owner, self.settings.claim_seconds)
        try:
            if self.search.state != SearchState.RUNNING:
                self.store.set_search_state(self.search_id, SearchState.RUNNING)
            requeued = self.store.requeue_leased(self.search_id)
            if requeued:
                self.log(f"re-queued {requeued} candidate(s) leased before the restart")
            strategy = self._strategy()
            self.tracker, self.run_id = self._tracking()
            self.reporter = _Reporter(self.log)
            names = [f"search{self.search_id}-w{i}" for i in range(self.settings.workers)]
            self.executor.start(names, WorkerPayload(checkpoint, self.supernet.checkpoint_sha256,
                                                     _evaluation_dict(self.plan, self.workspace),
                                                     self.settings.threads_per_worker))
            self.workers = names
            state = self._loop(strategy)
            if state == SearchState.DONE:
                self.store.set_search_state(self.search_id, SearchState.DONE)
                self.reporter.submit(lambda: self.tracker.finish(self.run_id))
        except SearchBusyError:
            raise  # another orchestrator took the search over: its state is no longer ours to change
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                self.store.requeue_leased(self.search_id)
                raise
            self.store.set_search_state(self.search_id, SearchState.FAILED, error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self.executor.shutdown()
            if getattr(self, "reporter", None) is not None:
                self.reporter.close()
            self.store.release_search(self.search_id, self.owner)
        return self.summary()

    def _loop(self, strategy) -> SearchState:
        batch, trials = self.plan.batch_size, self.search.trials
        stored = list(self.store.candidates(self.search_id))
        position, batch_index = 0, 0
        bar = self._progress(trials)
        if strategy.keeps_own_state:
            # an Optuna study already holds its trials: finish the stored open ones, then continue
            open_ones = [c for c in stored if c.status not in FINISHED]
            if open_ones and not self._evaluate(open_ones):
                bar.close()
                return self._state()
            pending = set(strategy.pending())
            strategy.tell([_result(c) for c in self.store.candidates(self.search_id)
                           if parse_config_numbers(c.config) in pending])
            bar.update(len(open_ones))
            position = len(stored)
            batch_index = (len(stored) + batch - 1) // batch
        try:
            while position < trials:
                if self._stopping():
                    return self._state()
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
                        return self._state()  # paused or cancelled mid-batch: resume replays it
                    records = [self.store.get_candidate(r.id) for r in records]
                strategy.tell([_result(r) for r in records])
                position += len(records)
                if pending:
                    self._report(records, batch_index)
                    bar.update(len(pending))
                    bar.set_postfix_str(self._best_text(), refresh=False)
                batch_index += 1
        finally:
            bar.close()
        self._report([], batch_index, final=True)
        return SearchState.DONE

    def _replayed(self, stored: list[CandidateRecord], position: int, configs) -> list[CandidateRecord]:
        expected = stored[position: position + len(configs)]
        got = [format_config(c) for c in configs]
        if [c.config for c in expected] != got:
            raise ReplayError(f"search {self.search_id}: the strategy now proposes {got[:3]}... where the store "
                              f"holds {[c.config for c in expected][:3]}... (was the strategy or its settings "
                              "changed?); start a new search")
        return expected

    def _add(self, configs, position: int) -> list[CandidateRecord]:
        items = []
        largest = max(self.budgets)
        for i, config in enumerate(configs):
            macs = self.macs_of(config)
            params = self._params(config)
            status = CandidateStatus.QUEUED if macs <= largest else CandidateStatus.INFEASIBLE
            reason = None if status == CandidateStatus.QUEUED else f"{format_macs(macs)} MACs > budget {format_macs(largest)}"
            items.append(NewCandidate(format_config(config), macs, params, status, position + i, reason))
        return list(self.store.add_candidates(self.search_id, items).records)

    def _params(self, config) -> int:
        from evaluators.closed_form import closed_form_count

        return closed_form_count(self.supernet.architecture, tuple(config), tuple(self.plan.macs_size),
                                 **dict(self.supernet.hparams)).params

    # -- evaluation ------------------------------------------------------------------------------------
    def _evaluate(self, records: list[CandidateRecord]) -> bool:
        """Lease the batch's queued candidates to idle workers until every one is finished.

        Returns False when the search was paused (running evaluations are finished first) or
        cancelled (they are dropped and re-queued) before the batch was complete.
        """
        ids = {r.id for r in records}
        lease = self.settings.lease_seconds
        running: dict[str, tuple[int, float]] = {}  # worker -> (candidate id, started)
        while True:
            stop = self._stop_request()
            if stop == SearchState.CANCELLED or (stop == SearchState.PAUSED and not running):
                self.store.requeue_leased(self.search_id)
                return False
            now = time.time()
            for name, (cid, started) in list(running.items()):
                if now - started > lease:  # hung: kill it; the store counts the attempt
                    self.log(f"worker {name} exceeded the {lease:.0f}s lease on candidate {cid}; restarting it")
                    self.executor.restart(name)
                    self.store.fail_candidate(cid, name, f"worker {name} hung for more than {lease:.0f}s")
                    del running[name]
            for name in self.workers:
                if name in running or stop is not None:
                    continue
                leased = self.store.lease_candidates(self.search_id, name, 1, lease)
                leased = [c for c in leased if c.id in ids] or self._return(leased, name)
                if leased:
                    c = leased[0]
                    self.executor.submit(name, Task(c.id, c.config))
                    running[name] = (c.id, time.time())
            if not running:
                remaining = [c for c in self.store.candidates(self.search_id) if c.id in ids and c.status not in FINISHED]
                if not remaining:
                    return True
            for outcome in self.executor.wait(timeout=0.5):
                running.pop(outcome.worker, None)
                self._record(outcome)

    def _return(self, leased, name) -> list:
        for c in leased:  # not of this batch: give it back (cannot happen while one orchestrator holds the search)
            self.store.fail_candidate(c.id, name, "leased outside its batch")
        return []

    def _record(self, outcome: Outcome) -> None:
        if outcome.worker_lost:
            self.executor.restart(outcome.worker)
        try:
            self._store_outcome(outcome)
        except LeaseError as exc:  # a late result for a lease that was already given up
            self.log(f"discarded a late result from {outcome.worker}: {exc}")

    def _store_outcome(self, outcome: Outcome) -> None:
        if outcome.ok:
            if outcome.sample_png:
                folder = self.workspace.samples_dir(self.search_id)
                folder.mkdir(parents=True, exist_ok=True)
                config = self.store.get_candidate(outcome.candidate_id).config
                (folder / f"{config}.png").write_bytes(outcome.sample_png)
            self.store.complete_candidate(outcome.candidate_id, outcome.worker, outcome.metrics, outcome.evaluator,
                                          outcome.seconds)
        else:
            record = self.store.fail_candidate(outcome.candidate_id, outcome.worker, outcome.error)
            verb = "failed for good" if record.status == CandidateStatus.FAILED else "will be retried"
            self.log(f"candidate {record.config} {verb} (attempt {record.attempts}): {outcome.error[:300]}")

    # -- bookkeeping -----------------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        if time.time() - self._last_heartbeat > self.settings.claim_seconds / 4:
            self.store.heartbeat(self.search_id, self.owner, self.settings.claim_seconds)
            self._last_heartbeat = time.time()

    def _stopping(self) -> bool:
        self._heartbeat()
        return self._state() in (SearchState.PAUSED, SearchState.CANCELLED)

    def _stop_request(self) -> SearchState | None:
        """Paused or cancelled, checked at most once a second while evaluations run."""
        now = time.time()
        if now - self._last_state_check >= 1.0:
            self._last_state_check = now
            self._stop_seen = self._state() if self._stopping() else None
        return self._stop_seen

    def _state(self) -> SearchState:
        return SearchState(self.store.get_search(self.search_id).state)

    def _progress(self, trials: int):
        from tqdm import tqdm

        done = sum(1 for c in self.store.candidates(self.search_id) if c.status in FINISHED)
        return tqdm(total=trials, initial=min(done, trials), desc=f"search {self.search_id}", unit="cand",
                    disable=not self.settings.progress, dynamic_ncols=True)

    def _best_text(self) -> str:
        best = self.summary().best
        metric = self.metric.name
        return "; ".join(f"<={format_macs(b)}: {metric} {c.metrics[metric]:.4g}" if c else f"<={format_macs(b)}: -"
                         for b, c in best.items())

    def summary(self) -> SearchSummary:
        return search_summary(self.store, self.search_id)

    def _tracking(self):
        from .tracking import SearchTracker

        uri = self.settings.mlflow_uri or self.workspace.mlflow_uri
        tracker = SearchTracker(uri, artifact_root=self.workspace.mlflow_artifacts)
        existing = tracker.find_search_run(self.search_id)
        params = {"supernet": self.supernet.name, "space": self.supernet.space, "budgets": list(self.budgets),
                  "strategy": self.search.strategy, "seed": self.search.seed, "trials": self.search.trials,
                  "metric": self.metric.name, "batch_size": self.plan.batch_size,
                  "macs_size": list(self.plan.macs_size)}
        return tracker, tracker.start_search(self.search_id, params, run_id=existing)

    def _report(self, records: list[CandidateRecord], batch_index: int, final: bool = False) -> None:
        """Read what to log from the store now; hand the MLflow calls to the background reporter."""
        from .tracking import FrontMember, front_plot_png

        summary = self.summary()
        metric = self.metric.name
        values = {"candidates_done": summary.done, "candidates_failed": summary.failed}
        if summary.hypervolume is not None:
            values["hypervolume"] = summary.hypervolume
        for budget, best in summary.best.items():
            if best is not None:
                values[f"best_{metric}_{format_macs(budget)}"] = best.metrics[metric]
        tracked = [_tracked(r) for r in records]
        tracker, run_id, step = self.tracker, self.run_id, summary.done + summary.failed

        def progress() -> None:
            if tracked:
                tracker.log_candidates(run_id, tracked, batch_index)
            tracker.log_progress(run_id, step, values)

        self.reporter.submit(progress)
        front = tuple(c.config for c in summary.front)
        # child runs and the plot when the front moved, at most every FRONT_LOG_SECONDS (the dashboard is live)
        due = time.time() - self._front_logged_at >= FRONT_LOG_SECONDS
        if front and (final or (front != self._logged_front and due)):
            self._logged_front, self._front_logged_at = front, time.time()
            points = [(c.macs, c.metrics[metric]) for c in self.store.candidates(self.search_id, CandidateStatus.DONE)]
            front_points = [(c.macs, c.metrics[metric]) for c in summary.front]
            members = [FrontMember(c.config, c.macs, c.params, dict(c.metrics), self._sample(c.config))
                       for c in summary.front]
            budgets = list(self.budgets)
            self.reporter.submit(lambda: tracker.log_front(run_id, members, metric,
                                                           front_plot_png(points, front_points, metric, budgets)))

    def _sample(self, config: str):
        path = self.workspace.samples_dir(self.search_id) / f"{config}.png"
        if not path.is_file():
            return None
        import numpy as np
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))


def search_summary(store: Store, search_id: int) -> SearchSummary:
    """State, counts, best candidate per budget, Pareto front and hypervolume, from the store alone."""
    search = store.get_search(search_id)
    done = list(store.candidates(search_id, CandidateStatus.DONE))
    metric = Objective.coerce(search.objectives[0])
    best = best_per_budget(done, list(search.budgets), macs=lambda c: c.macs,
                           value=lambda c: c.metrics.get(metric.name), direction=metric.direction)
    front, volume = front_of(done, metric, search.budgets)
    counts = store.count_candidates(search_id)
    return SearchSummary(search_id, search.state.value, counts.done, counts.failed, best, front, volume)


def front_of(done: list[CandidateRecord], metric: Objective, budgets) -> tuple[list[CandidateRecord], float | None]:
    """Pareto front (MACs vs metric) of done candidates and its hypervolume.

    The hypervolume's reference point is (largest budget, worst value), with the worst value 0
    for the maximised metrics (mIoU, SSIM, PSNR are >= 0) and 1.1 x the worst value seen for
    minimised ones (FID, KID).
    """
    usable = [c for c in done if metric.name in c.metrics]
    if not usable:
        return [], None
    points = [(float(c.macs), float(c.metrics[metric.name])) for c in usable]
    directions = ["minimize", metric.direction]
    front = sorted((usable[i] for i in pareto_front(points, directions)), key=lambda c: (c.macs, c.config))
    worst = 0.0 if metric.direction == "maximize" else 1.1 * max(p[1] for p in points)
    volume = hypervolume(points, (float(max(budgets)) * 1.0001, worst), directions)
    return front, volume


def _result(c: CandidateRecord) -> TrialResult:
    config = parse_config_numbers(c.config)
    if c.status == CandidateStatus.DONE:
        return TrialResult(config, c.macs, dict(c.metrics))
    return TrialResult(config, c.macs, {}, feasible=c.status != CandidateStatus.INFEASIBLE, failed=True)


@dataclass(frozen=True)
class _Tracked:
    config: str
    macs: int
    params: int
    metrics: dict
    status: str


def _tracked(c: CandidateRecord) -> _Tracked:
    return _Tracked(c.config, c.macs, c.params, dict(c.metrics), c.status.value)


def _evaluation_dict(plan: SearchPlan, workspace: Workspace) -> dict:
    from dataclasses import asdict

    data = asdict(plan.evaluation)
    data["cache_dir"] = data.get("cache_dir") or str(workspace.cache)
    return data
