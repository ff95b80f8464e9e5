"""Who reports: a search's progress and Pareto front to MLflow, on one background thread.

The store is the source of truth and MLflow the audit log, so reporting never holds up a batch
and a failing MLflow call is logged, not raised. While MLflow does not answer, records wait and are
logged when it is back; what it never received (an outage past the end of the run, a record it
refused) is counted in the search's backlog for ``ganas search sync``, and a run waits at most
:data:`CLOSE_SECONDS` for MLflow before it exits. Every figure comes from the orchestrator's
:class:`~nas.summary.RunningFront`: no report re-reads the store.
"""
from __future__ import annotations

import io
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from foundation.errors import describe_error

from ..budget import format_macs
from ..store import CandidateRecord
from ..summary import RunningFront
from .backlog import MlflowBacklog

FRONT_LOG_SECONDS = 30.0  # child runs and the plot at most this often while the front moves (the dashboard is live)
RETRY_SECONDS = 30.0  # while MLflow does not answer, the oldest record is tried again this often
CLOSE_SECONDS = 30.0  # at the end of a run, how long to wait for MLflow before leaving the rest to a sync
MAX_PENDING = 1000  # records held for MLflow during an outage; older ones are left to a sync


@dataclass(frozen=True)
class _Tracked:
    config: str
    macs: int
    params: int
    metrics: dict
    status: str


class ReportQueue:
    """Runs reporting jobs one by one, in order, on a daemon thread; the search never waits for MLflow.

    A job that fails while MLflow does not answer (``answers()`` is false) stays first in line and is
    tried again every ``retry_seconds``, so what an outage held back is logged, in order, once MLflow
    answers again; a job that fails while MLflow answers is refused for itself and dropped. Dropped jobs,
    jobs beyond ``max_pending`` and jobs still waiting when :meth:`close` gives up are ``unlogged``:
    ``on_change`` hears every change of that count (the reporter keeps it in the search's backlog).
    """

    def __init__(self, log: Callable[[str], None], answers: Callable[[], bool],
                 on_change: Callable[[int], None] = lambda unlogged: None, retry_seconds: float = RETRY_SECONDS,
                 max_pending: int = MAX_PENDING, down: bool = False):
        self.log, self.answers, self.on_change = log, answers, on_change
        self.retry_seconds, self.max_pending = retry_seconds, max_pending
        self.down = down  # MLflow did not answer the last try (or the probe at the start)
        self.dropped = 0
        self._behind = 0  # jobs an outage held back that are still waiting once MLflow answers again
        self._jobs: deque[Callable[[], None]] = deque()
        self._condition = threading.Condition()
        self._reporting = threading.Lock()  # one on_change at a time, each with the count of its moment
        self._closing = False
        self._refusals: set[str] = set()
        self.thread = threading.Thread(target=self._work, name="ganas-mlflow", daemon=True)
        self.thread.start()

    @property
    def unlogged(self) -> int:
        """Jobs dropped, plus those waiting while MLflow is down, or held back by an outage and not logged yet
        (or left when the queue was closed)."""
        with self._condition:
            waiting = len(self._jobs) if self.down or self._closing else min(self._behind, len(self._jobs))
            return self.dropped + waiting

    def _report(self) -> None:
        with self._reporting:
            self.on_change(self.unlogged)

    def submit(self, job: Callable[[], None]) -> None:
        with self._condition:
            self._jobs.append(job)
            if len(self._jobs) > self.max_pending:  # a long outage: the oldest are left to a sync
                self._jobs.popleft()
                self.dropped += 1
            self._condition.notify_all()
        if self.down:
            self._report()

    def close(self, timeout: float) -> int:
        """Let the queue drain for at most ``timeout`` seconds (one more try if MLflow is down), then give up on
        what is left; returns how many jobs were not logged."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self.thread.join(timeout)
        self._report()
        return self.unlogged

    def _next(self) -> Callable[[], None] | None:
        with self._condition:
            self._condition.wait_for(lambda: self._jobs or self._closing)
            return self._jobs[0] if self._jobs else None

    def _work(self) -> None:
        while (job := self._next()) is not None:
            try:
                job()
            except Exception as exc:  # the store keeps the results; MLflow is the audit log
                if not self._failed(describe_error(exc)):
                    return
                continue
            with self._condition:
                self._jobs.popleft()
                recovered, caught_up = self.down, self._behind > 0
                if recovered:
                    self.down, self._behind = False, len(self._jobs)
                elif caught_up:
                    self._behind -= 1
            if recovered:
                self.log("MLflow answers again: the records it missed are being logged")
            if recovered or caught_up:
                self._report()

    def _failed(self, error: str) -> bool:
        """Handle a failed first job; False when the thread should stop (closing while MLflow is down)."""
        if self.answers():  # MLflow works but refused this record: skip it
            with self._condition:
                self._jobs.popleft()
                self.dropped += 1
                self._behind = max(0, self._behind - 1)
            if error not in self._refusals:
                self._refusals.add(error)
                self.log(f"MLflow refused a record ({error[:300]}); the search continues")
            self._report()
            return True
        if not self.down:
            self.down = True
            self.log(f"MLflow does not answer ({error[:300]}); the search continues, and what MLflow misses is "
                     f"logged when it answers again (tried every {self.retry_seconds:.0f} s)")
        self._report()
        with self._condition:
            if self._closing:
                return False
            self._condition.wait_for(lambda: self._closing, timeout=self.retry_seconds)
        return True


class SearchReporter:
    """One search's MLflow run: parameters at start, candidates per batch, the front when it moves.

    The run is opened by the first job, on the reporting thread, so a tracking server that is down at
    the start costs the search nothing: the run is created when it answers.
    """

    def __init__(self, tracking_uri: str, artifact_root: Path, search_id: int, params: Mapping[str, Any],
                 samples_dir: Path, log: Callable[[str], None], backlog: MlflowBacklog,
                 retry_seconds: float = RETRY_SECONDS):
        from ..tracking_uri import tracking_answers, unreachable_reason

        self.uri, self.artifact_root, self.search_id, self.params = tracking_uri, artifact_root, search_id, params
        self.samples_dir, self.log, self.backlog = samples_dir, log, backlog
        self._earlier = backlog.counts().get(tracking_uri, 0)  # missed by an earlier run: a sync logs those
        self._backlog_failed = False
        self._tracker = None
        self._run_id: str | None = None
        self._logged_front: tuple[str, ...] = ()
        self._front_logged_at = 0.0
        self.versus = None  # nas.reference.SearchReference, once the teacher is known
        reason = unreachable_reason(tracking_uri)
        if reason is not None:
            log(f"MLflow at {tracking_uri} does not answer ({reason}): the search runs without it and logs to it "
                f"once it answers; `{backlog.sync_command(tracking_uri)}` logs anything still missing")
        self.queue = ReportQueue(log, lambda: tracking_answers(tracking_uri), self._unlogged_changed,
                                 retry_seconds=retry_seconds, down=reason is not None)
        self.queue.submit(self._opened)

    def _opened(self):
        """The tracker and the search's run (found again on resume), opened on first use."""
        if self._run_id is None:
            from ..tracking import SearchTracker

            tracker = SearchTracker(self.uri, artifact_root=self.artifact_root)
            self._run_id = tracker.start_search(self.search_id, self.params,
                                                run_id=tracker.find_search_run(self.search_id))
            self._tracker = tracker
        return self._tracker, self._run_id

    def _submit(self, work: Callable[[Any, str], None]) -> None:
        self.queue.submit(lambda: work(*self._opened()))

    def _unlogged_changed(self, unlogged: int) -> None:
        try:
            self.backlog.set(self.uri, self._earlier + unlogged)
        except OSError as exc:  # a read-only workspace: say it once, the search goes on
            if not self._backlog_failed:
                self._backlog_failed = True
                self.log(f"cannot record what MLflow missed in {self.backlog.path} ({exc})")

    def teacher(self, versus, metric: str) -> None:
        """The teacher's figures on the search run; from now on front members carry their ratios to them."""
        self.versus = versus
        values = teacher_values(versus, metric)
        if values:
            self._submit(lambda tracker, run_id: tracker.log_progress(run_id, 0, values))

    def batch(self, records: list[CandidateRecord], batch_index: int, running: RunningFront,
              final: bool = False) -> None:
        """Log a finished batch and the running figures; the front too when it moved (or at the end)."""
        values = progress_values(running)
        tracked = tracked_candidates(records)
        step = running.done + running.failed

        def progress(tracker, run_id: str) -> None:
            if tracked:
                tracker.log_candidates(run_id, tracked, batch_index)
            tracker.log_progress(run_id, step, values)

        self._submit(progress)
        front = tuple(c.config for c in running.members)
        due = time.monotonic() - self._front_logged_at >= FRONT_LOG_SECONDS
        if front and (final or (front != self._logged_front and due)):
            self._logged_front, self._front_logged_at = front, time.monotonic()
            members = front_members(running, self.versus, self.samples_dir)
            plot = front_plot(running)
            self._submit(lambda tracker, run_id: tracker.log_front(run_id, members, running.metric, plot()))

    def finish(self) -> None:
        self._submit(lambda tracker, run_id: tracker.finish(run_id))

    def close(self, timeout: float = CLOSE_SECONDS) -> int:
        """Wait at most ``timeout`` s for MLflow, then leave what it has not received to a sync; returns how many
        records of this search MLflow still lacks."""
        missing = self._earlier + self.queue.close(timeout)
        if missing:
            self.log(f"MLflow: {missing} record{'s' if missing != 1 else ''} of search {self.search_id} not logged to "
                     f"{self.uri}; log them with: {self.backlog.sync_command(self.uri)}")
        return missing


def search_params(search, supernet, plan) -> dict[str, Any]:
    """The parameters of a search's run (a resumed run and a sync log the same)."""
    return {"supernet": supernet.name, "space": supernet.space, "budgets": list(search.budgets),
            "strategy": search.strategy, "seed": search.seed, "trials": search.trials,
            "metric": search.objectives[0].metric, "batch_size": plan.batch_size,
            "macs_size": list(plan.macs_size)}


def progress_values(running: RunningFront) -> dict[str, float]:
    """The search's figures after a batch: candidates done and failed, hypervolume, the best per budget."""
    metric = running.metric
    values = {"candidates_done": running.done, "candidates_failed": running.failed}
    if running.hypervolume is not None:
        values["hypervolume"] = running.hypervolume
    for budget, best in running.best().items():
        if best is not None:
            values[f"best_{metric}_{format_macs(budget)}"] = best.metrics[metric]
    return values


def teacher_values(versus, metric: str) -> dict[str, float]:
    """The teacher's cost and figure on the search run (none without a teacher)."""
    if versus.teacher is None:
        return {}
    values = {"teacher_macs": float(versus.teacher.macs)}
    if versus.teacher.value(metric) is not None:
        values[f"teacher_{metric}"] = versus.teacher.value(metric)
    return values


def tracked_candidates(records: Sequence[CandidateRecord]) -> list[_Tracked]:
    return [_Tracked(c.config, c.macs, c.params, dict(c.metrics), c.status.value) for c in records]


def front_members(running: RunningFront, versus, samples_dir: Path) -> list:
    """The front as MLflow shows it: each member with its ratios to the teacher and its sample grid."""
    from ..tracking import FrontMember

    return [FrontMember(c.config, c.macs, c.params, _with_ratios(c, running.metric, versus),
                        _sample(samples_dir, c.config)) for c in running.members]


def front_plot(running: RunningFront) -> Callable[[], bytes]:
    """The front's plot, drawn when called (on the reporting thread), from a copy of today's points."""
    from ..tracking import front_plot_png

    metric = running.metric
    points, budgets = list(running.points), list(running.budgets)
    front = [(c.macs, c.metrics[metric]) for c in running.members]
    return lambda: front_plot_png(points, front, metric, budgets)


def _with_ratios(candidate: CandidateRecord, metric: str, versus) -> dict:
    values = dict(candidate.metrics)
    if versus is not None:
        fewer, relative = versus.fewer_macs(candidate.macs), versus.relative(metric, values[metric])
        if fewer is not None:
            values["x_fewer_macs"] = fewer
        if relative is not None:
            values[f"{metric}_vs_teacher"] = relative
    return values


def _sample(samples_dir: Path, config: str):
    path = samples_dir / f"{config}.png"
    if not path.is_file():
        return None
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))
