"""Who reports: a search's progress and Pareto front to MLflow, on one background thread.

The store is the source of truth and MLflow the audit log, so reporting never holds up a batch
and a failing MLflow call is logged, not raised. Every figure comes from the orchestrator's
:class:`~nas.summary.RunningFront`: no report re-reads the store.
"""
from __future__ import annotations

import io
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..budget import format_macs
from ..store import CandidateRecord
from ..summary import RunningFront

FRONT_LOG_SECONDS = 30.0  # child runs and the plot at most this often while the front moves (the dashboard is live)


@dataclass(frozen=True)
class _Tracked:
    config: str
    macs: int
    params: int
    metrics: dict
    status: str


class _BackgroundQueue:
    """Runs jobs one by one, in order, on a daemon thread; a failing job is logged and skipped."""

    def __init__(self, log: Callable[[str], None]):
        self.log = log
        self.jobs: queue.Queue = queue.Queue()
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
        """Wait for every submitted job."""
        self.jobs.put(None)
        self.thread.join()


class SearchReporter:
    """One search's MLflow run: parameters at start, candidates per batch, the front when it moves."""

    def __init__(self, tracking_uri: str, artifact_root: Path, search_id: int, params: Mapping[str, Any],
                 samples_dir: Path, log: Callable[[str], None]):
        from ..tracking import SearchTracker

        self.tracker = SearchTracker(tracking_uri, artifact_root=artifact_root)
        self.run_id = self.tracker.start_search(search_id, params, run_id=self.tracker.find_search_run(search_id))
        self.samples_dir = samples_dir
        self.queue = _BackgroundQueue(log)
        self._logged_front: tuple[str, ...] = ()
        self._front_logged_at = 0.0
        self.versus = None  # nas.reference.SearchReference, once the teacher is known

    def teacher(self, versus, metric: str) -> None:
        """The teacher's figures on the search run; from now on front members carry their ratios to them."""
        self.versus = versus
        if versus.teacher is None:
            return
        values = {"teacher_macs": float(versus.teacher.macs)}
        if versus.teacher.value(metric) is not None:
            values[f"teacher_{metric}"] = versus.teacher.value(metric)
        if values:
            tracker, run_id = self.tracker, self.run_id
            self.queue.submit(lambda: tracker.log_progress(run_id, 0, values))

    def batch(self, records: list[CandidateRecord], batch_index: int, running: RunningFront,
              final: bool = False) -> None:
        """Log a finished batch and the running figures; the front too when it moved (or at the end)."""
        from ..tracking import FrontMember, front_plot_png

        metric = running.metric
        values = {"candidates_done": running.done, "candidates_failed": running.failed}
        if running.hypervolume is not None:
            values["hypervolume"] = running.hypervolume
        for budget, best in running.best().items():
            if best is not None:
                values[f"best_{metric}_{format_macs(budget)}"] = best.metrics[metric]
        tracked = [_Tracked(c.config, c.macs, c.params, dict(c.metrics), c.status.value) for c in records]
        tracker, run_id, step = self.tracker, self.run_id, running.done + running.failed

        def progress() -> None:
            if tracked:
                tracker.log_candidates(run_id, tracked, batch_index)
            tracker.log_progress(run_id, step, values)

        self.queue.submit(progress)
        front = tuple(c.config for c in running.members)
        due = time.monotonic() - self._front_logged_at >= FRONT_LOG_SECONDS
        if front and (final or (front != self._logged_front and due)):
            self._logged_front, self._front_logged_at = front, time.monotonic()
            members = [FrontMember(c.config, c.macs, c.params, self._with_ratios(c, metric), self._sample(c.config))
                       for c in running.members]
            points = list(running.points)
            front_points = [(c.macs, c.metrics[metric]) for c in running.members]
            budgets = list(running.budgets)
            self.queue.submit(lambda: tracker.log_front(run_id, members, metric,
                                                        front_plot_png(points, front_points, metric, budgets)))

    def _with_ratios(self, candidate: CandidateRecord, metric: str) -> dict:
        values = dict(candidate.metrics)
        if self.versus is not None:
            fewer, relative = self.versus.fewer_macs(candidate.macs), self.versus.relative(metric, values[metric])
            if fewer is not None:
                values["x_fewer_macs"] = fewer
            if relative is not None:
                values[f"{metric}_vs_teacher"] = relative
        return values

    def finish(self) -> None:
        tracker, run_id = self.tracker, self.run_id
        self.queue.submit(lambda: tracker.finish(run_id))

    def close(self) -> None:
        self.queue.close()

    def _sample(self, config: str):
        path = self.samples_dir / f"{config}.png"
        if not path.is_file():
            return None
        import numpy as np
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))
