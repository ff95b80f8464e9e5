"""``ganas search sync``: log a search to MLflow from the store, after an outage or to another tracking server.

The store holds everything MLflow shows, so a sync replays the search batch by batch with the
reporter's own figures (:mod:`.reporting`) and logs only what MLflow lacks: the run and its
parameters, the teacher's figures, each (metric, step) of the progress, the candidate batches, the
front's child runs and artifacts, the run's end, the final models not yet registered. Runs are found
by their tags (``ganas.search_id``, ``ganas.config``, ``ganas.final``), so a second sync logs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Callable

from foundation.errors import GanasError, describe_error

from ..reference import reference_of
from ..search_setup import SearchPlan
from ..store import CandidateRecord, CandidateStatus, FinalStatus, SearchRecord, SearchState, Store
from ..summary import RunningFront
from ..teacher import TeacherInfo
from ..workspace import Workspace
from .backlog import MlflowBacklog
from .claim import dead_local_owner
from .reporting import front_members, front_plot, progress_values, search_params, teacher_values, tracked_candidates

FINISHED = (CandidateStatus.DONE, CandidateStatus.FAILED, CandidateStatus.INFEASIBLE)
RUN_END = {SearchState.DONE: "FINISHED", SearchState.CANCELLED: "KILLED", SearchState.FAILED: "FAILED"}
MAX_BATCH = 1000  # metrics per MLflow log_batch call (MLflow's limit)


class SyncBusyError(GanasError):
    """The search is being run or finalized: its own process logs to MLflow now."""


class MlflowUnavailableError(GanasError):
    """MLflow failed during a sync: what was logged stays, the rest is logged by the next sync."""

    exit_code = 1  # not bad input: MLflow is down


@dataclass(frozen=True)
class SyncReport:
    """What one sync logged (all zero: MLflow had everything)."""

    search_id: int
    uri: str
    run_id: str
    run_created: bool
    params: int
    metric_points: int
    candidate_batches: int
    front_runs: int
    front_artifacts: bool
    final_models: int
    run_ended: bool
    final_models_failed: int = 0  # done final models MLflow answered but would not register (each one logged)

    @property
    def logged_anything(self) -> bool:
        return any((self.run_created, self.params, self.metric_points, self.candidate_batches, self.front_runs,
                    self.front_artifacts, self.final_models, self.run_ended))

    def describe(self) -> str:
        head = f"search {self.search_id} synced to {self.uri} (run {self.run_id})"
        if not self.logged_anything and not self.final_models_failed:
            return f"{head}: MLflow already had everything"
        counted = [(self.params, "parameter"), (self.metric_points, "metric point"),
                   (self.candidate_batches, "candidate batch"), (self.front_runs, "front member run"),
                   (self.final_models, "final model")]
        parts = (["the run"] * self.run_created + [_plural(n, what) for n, what in counted if n]
                 + ["the front's tags and artifacts"] * self.front_artifacts + ["the run's end"] * self.run_ended)
        failed = (f"; {_plural(self.final_models_failed, 'final model')} not registered (see above)"
                  if self.final_models_failed else "")
        return f"{head}: logged {', '.join(parts) or 'nothing'}{failed}"


def _plural(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "es" if what.endswith("ch") else "s")


def sync_search(store: Store, workspace: Workspace, search_id: int, uri: str | None = None,
                model_name: str | None = None, log: Callable[[str], None] = print) -> SyncReport:
    """Log to MLflow (``uri``, default the workspace's) whatever of ``search_id`` it lacks; clears the search's
    backlog for ``uri`` (but for final models MLflow would not register). Refused while an orchestrator or
    finalizer holds the search (it logs by itself)."""
    from ..tracking_uri import check_tracking_uri

    uri = check_tracking_uri(uri) if uri is not None else workspace.mlflow_uri
    search = store.get_search(search_id)
    if search.owner and (search.owner_expires_at or 0) > store.clock() and not dead_local_owner(search.owner):
        raise SyncBusyError(f"search {search_id} is held by {search.owner}, which logs to MLflow itself; sync it "
                            f"once it has stopped (ganas search status {search_id})")
    try:
        report = _Sync(store, workspace, search, uri, model_name, log).run()
    except GanasError:
        raise
    except Exception as exc:  # MLflow down or refusing: nothing in the store changed but final models' URIs
        raise MlflowUnavailableError(
            f"MLflow at {uri} failed during the sync ({describe_error(exc)[:300]}); what was logged "
            f"stays: run `{MlflowBacklog(workspace, search_id).sync_command(uri)}` again when it answers") from None
    MlflowBacklog(workspace, search_id).set(uri, report.final_models_failed)
    return report


class _Sync:
    def __init__(self, store: Store, workspace: Workspace, search: SearchRecord, uri: str, model_name: str | None,
                 log: Callable[[str], None]):
        self.store, self.workspace, self.search, self.uri, self.log = store, workspace, search, uri, log
        self.supernet = store.get_supernet(search.supernet_id)
        self.plan = SearchPlan.from_search(search)
        self.model_name = model_name or f"ganas-{self.supernet.name}"

    def run(self) -> SyncReport:
        from ..tracking import SearchTracker

        tracker = SearchTracker(self.uri, artifact_root=self.workspace.mlflow_artifacts)
        params = search_params(self.search, self.supernet, self.plan)
        run_id = tracker.find_search_run(self.search.id)
        created = run_id is None
        if created:
            run_id = tracker.start_search(self.search.id, params)
            params_logged = len(params)
        else:
            params_logged = tracker.log_params(run_id, params)
            tracker.load_front_runs(run_id)
        metric = self.search.objectives[0].metric
        versus = reference_of(self.supernet, self.search)
        running, points, batches = self._replay(metric)
        points.update({k: {0: (v, _millis(self.search.created_at))} for k, v in teacher_values(versus, metric).items()})
        metric_points = self._log_points(tracker, run_id, points, fresh=created)
        candidate_batches = self._log_batches(tracker, run_id, batches, fresh=created)
        front_runs, front_written = 0, False
        members = front_members(running, versus, self.workspace.samples_dir(self.search.id))
        if members and not tracker.front_is_logged(run_id, [m.config for m in members]):
            front_runs, front_written = tracker.log_front(run_id, members, metric, front_plot(running)()), True
        ended = self._end(tracker, run_id)
        registered, failed = self._finals()
        return SyncReport(self.search.id, self.uri, run_id, created, params_logged, metric_points, candidate_batches,
                          front_runs, front_written, registered, ended, failed)

    def _replay(self, metric: str):
        """The search batch by batch, as its reporter logged it: progress points (metric -> step -> (value, time
        in ms)) after each evaluated batch, the batches' candidates, and the front at the end."""
        records = sorted(self.store.candidates(self.search.id), key=lambda c: c.order)
        running = RunningFront.of(self.search)
        points: dict[str, dict[int, tuple[float, int]]] = {}
        batches: dict[int, list[CandidateRecord]] = {}
        for index, group in groupby(records, key=lambda c: c.order // self.plan.batch_size):
            group = list(group)
            evaluated = [c for c in group if c.status in (CandidateStatus.DONE, CandidateStatus.FAILED)]
            if not evaluated or any(c.status not in FINISHED for c in group):
                continue  # nothing evaluated (all over budget), or still open: the reporter logged nothing either
            running.add(group)
            batches[index] = group
            when = _millis(max(c.finished_at or 0.0 for c in evaluated))
            for key, value in progress_values(running).items():
                points.setdefault(key, {})[running.done + running.failed] = (float(value), when)
        return running, points, batches

    def _log_points(self, tracker, run_id: str, points: dict, fresh: bool) -> int:
        """Each (metric, step) the run lacks; returns how many were logged."""
        from mlflow.entities import Metric

        missing = []
        for key, by_step in points.items():
            have = set() if fresh else {m.step for m in tracker.client.get_metric_history(run_id, key)}
            missing += [Metric(key, value, when, step) for step, (value, when) in by_step.items() if step not in have]
        for start in range(0, len(missing), MAX_BATCH):
            tracker.client.log_batch(run_id, metrics=missing[start:start + MAX_BATCH])
        return len(missing)

    def _log_batches(self, tracker, run_id: str, batches: dict, fresh: bool) -> int:
        have = set() if fresh else {a.path for a in tracker.client.list_artifacts(run_id, "candidates")}
        logged = 0
        for index, group in batches.items():
            if f"candidates/batch-{index:05d}.jsonl" not in have:
                tracker.log_candidates(run_id, tracked_candidates(group), index)
                logged += 1
        return logged

    def _end(self, tracker, run_id: str) -> bool:
        """End the run as the search ended (a running or paused search's run stays open)."""
        status = RUN_END.get(self.search.state)
        if status is None or tracker.client.get_run(run_id).info.status == status:
            return False
        tracker.finish(run_id, status)
        return True

    def _finals(self) -> tuple[int, int]:
        """Register the done final models the store has no MLflow model URI for; (registered, failed). One that
        fails while MLflow answers (its ONNX file gone, say) is reported and the others go on."""
        from ..tracking import log_final_model
        from ..tracking_uri import tracking_answers

        teacher = TeacherInfo.from_dict(self.supernet.teacher)
        registered = failed = 0
        for final in self.store.finals(self.search.id, FinalStatus.DONE):
            if final.model_uri:
                continue
            if "onnx" not in final.files:
                self.log(f"final model {final.config} not registered: it has no ONNX export")
                failed += 1
                continue
            onnx = self.workspace.absolute(final.files["onnx"])
            try:
                model_uri = log_final_model(self.uri, self.workspace.mlflow_artifacts, self.search.id, final, onnx,
                                            self.model_name, teacher.macs if teacher else None)
            except Exception as exc:
                if not tracking_answers(self.uri):
                    raise
                self.log(f"final model {final.config} not registered ({describe_error(exc)[:300]})")
                failed += 1
                continue
            self.store.set_final_model(final.id, model_uri)
            self.log(f"{final.config}: registered as {model_uri}")
            registered += 1
        return registered, failed


def _millis(seconds: float) -> int:
    return int(seconds * 1000)
