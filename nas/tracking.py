"""MLflow as the search's audit log: one run per search, candidates in batches, a child run per
Pareto-front member, the front as JSON and PNG.

Only :class:`mlflow.MlflowClient` with explicit run ids is used (the fluent API keeps a global
active run and is not thread-safe). The embedded default is a SQLite tracking store in the
workspace with artifacts beside it (repointed at the workspace's own artifacts when the workspace was
moved or copied: :mod:`nas.mlflow_relocation`); ``--mlflow-uri`` points at a tracking server instead.
"""
from __future__ import annotations

import io
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

FRONT_TAG = "ganas.pareto_front"
EXPERIMENT = "ganas-search"


class CandidateLike(Protocol):
    config: str
    macs: int
    params: int
    metrics: Mapping[str, float]
    status: str


@dataclass(frozen=True)
class FrontMember:
    """A Pareto-front candidate as MLflow shows it, with an optional sample-image grid (HxWx3 uint8)."""

    config: str
    macs: int
    params: int
    metrics: Mapping[str, float]
    image_grid: Any = None


def default_tracking_uri(workspace: Path) -> str:
    return f"sqlite:///{(workspace / 'mlflow.db').resolve()}"


class SearchTracker:
    """Writes one search's progress to MLflow; every method is safe to call again after a resume."""

    def __init__(self, tracking_uri: str, artifact_root: Path | None = None, experiment: str = EXPERIMENT):
        import logging

        from mlflow import MlflowClient

        from .tracking_uri import bound_mlflow

        bound_mlflow()  # a tracking server that is down fails a call in seconds, not minutes
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # no per-call INFO lines between progress bars
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.client = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            self.experiment_id = found.experiment_id
            if artifact_root is not None:  # before any artifact is written: a moved workspace writes into itself
                from .mlflow_relocation import follow_workspace, forget_artifact_repositories

                follow_workspace(tracking_uri, found.artifact_location, artifact_root)
                forget_artifact_repositories()
        else:
            location = artifact_root.resolve().as_uri() if artifact_root is not None else None
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=location)
        self._front_runs: dict[str, str] = {}  # front member's config -> its child run
        self._front_complete: set[str] = set()  # children whose figures are all logged

    # -- the search run ---------------------------------------------------------------
    def find_search_run(self, search_id: int) -> str | None:
        """The run of a search started before (resume, sync), found by its tag; final models' child runs carry
        the tag too and are not it."""
        runs = self.client.search_runs([self.experiment_id], filter_string=f"tags.`ganas.search_id` = '{search_id}'",
                                       order_by=["attributes.start_time ASC"])
        runs = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        return runs[0].info.run_id if runs else None

    def start_search(self, search_id: int, params: Mapping[str, Any], run_id: str | None = None) -> str:
        """Create the search's run, or reopen ``run_id`` on resume; returns the run id to store."""
        from mlflow.entities import Param

        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            self.log_params(run_id, params)
            self.load_front_runs(run_id)
            return run_id
        run = self.client.create_run(self.experiment_id, run_name=f"search-{search_id}",
                                     tags={"ganas.search_id": str(search_id)})
        self.client.log_batch(run.info.run_id, params=[Param(k, _param(v)) for k, v in params.items()])
        return run.info.run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> int:
        """The parameters the run lacks (an interrupted start, a run created by a final model); returns how many."""
        from mlflow.entities import Param

        logged = self.client.get_run(run_id).data.params
        missing = [Param(k, _param(v)) for k, v in params.items() if k not in logged]
        if missing:
            self.client.log_batch(run_id, params=missing)
        return len(missing)

    def log_progress(self, run_id: str, step: int, values: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def log_candidates(self, run_id: str, candidates: Sequence[CandidateLike], batch: int) -> None:
        """A batch of finished candidates as one JSON-lines artifact (not thousands of runs)."""
        lines = [json.dumps({"config": c.config, "macs": c.macs, "params": c.params, "status": c.status,
                             **{f"metric.{k}": v for k, v in c.metrics.items()}}) for c in candidates]
        self.client.log_text(run_id, "\n".join(lines) + "\n", f"candidates/batch-{batch:05d}.jsonl")

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    # -- the Pareto front ---------------------------------------------------------------
    def log_front(self, run_id: str, members: Sequence[FrontMember], objective: str, figure_png: bytes | None) -> int:
        """Child runs for new members, front tags moved to the current members, JSON and PNG artifacts; returns
        how many child runs were created. Safe to repeat: a child an interrupted call left unfinished is
        completed, none is created twice."""
        current = {m.config for m in members}
        for config, child in self._front_runs.items():
            self.client.set_tag(child, FRONT_TAG, "true" if config in current else "false")
        created = 0
        for member in members:
            if member.config in self._front_complete:
                continue
            child_id = self._front_runs.get(member.config)
            if child_id is None:
                child_id = self.client.create_run(
                    self.experiment_id, run_name=f"subnet-{member.config}",
                    tags={"mlflow.parentRunId": run_id, FRONT_TAG: "true", "ganas.config": member.config}).info.run_id
                self._front_runs[member.config] = child_id
                created += 1
                self._log_member(child_id, member, logged={})
            else:
                self._log_member(child_id, member, logged=self.client.get_run(child_id).data.metrics)
            self._front_complete.add(member.config)
        front = [{"config": m.config, "macs": m.macs, "params": m.params, "metrics": dict(m.metrics)} for m in members]
        self.client.log_dict(run_id, {"objective": objective, "front": front}, "pareto_front.json")
        if figure_png is not None:
            with tempfile.TemporaryDirectory(prefix="ganas-mlflow-") as folder:
                path = Path(folder) / "pareto_front.png"
                path.write_bytes(figure_png)
                self.client.log_artifact(run_id, str(path))
        return created

    def find_final_run(self, search_id: int, config: str) -> str | None:
        """The child run of a final model logged before (by finalize or a sync), found by its tags."""
        runs = self.client.search_runs(
            [self.experiment_id], order_by=["attributes.start_time ASC"],
            filter_string=f"tags.`ganas.search_id` = '{search_id}' and tags.`ganas.final` = 'true' "
                          f"and tags.`ganas.config` = '{config}'")
        return runs[0].info.run_id if runs else None

    def _log_member(self, child_id: str, member: FrontMember, logged: Mapping[str, float]) -> None:
        """A front member's config, cost, figures (those not ``logged`` yet) and sample grid, then finish its run."""
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        figures = {"macs": float(member.macs), "params": float(member.params),
                   **{k: float(v) for k, v in member.metrics.items()}}
        self.client.log_batch(child_id, params=[Param("config", member.config)],
                              metrics=[Metric(k, v, now, 0) for k, v in figures.items() if k not in logged])
        if member.image_grid is not None:
            self.client.log_image(child_id, member.image_grid, artifact_file="samples.png")
        self.client.set_terminated(child_id)

    def front_is_logged(self, run_id: str, configs: Sequence[str]) -> bool:
        """Whether the run shows this front already: each member's child run complete and tagged on the front, no
        other child tagged on it, and ``pareto_front.json`` listing these members."""
        runs = self.client.search_runs([self.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
        members = [r for r in runs if r.data.tags.get("ganas.config") and r.data.tags.get("ganas.final") != "true"]
        tagged = {r.data.tags["ganas.config"] for r in members if r.data.tags.get(FRONT_TAG) == "true"}
        complete = {r.data.tags["ganas.config"] for r in members if r.info.status == "FINISHED"}
        if tagged != set(configs) or not set(configs) <= complete:
            return False
        if "pareto_front.json" not in {a.path for a in self.client.list_artifacts(run_id)}:
            return False
        with tempfile.TemporaryDirectory(prefix="ganas-mlflow-") as folder:
            front = json.loads(Path(self.client.download_artifacts(run_id, "pareto_front.json", folder)).read_text())
        return [m["config"] for m in front.get("front", [])] == list(configs)

    def load_front_runs(self, run_id: str) -> None:
        """The front members' child runs already in MLflow (final models' child runs are not members)."""
        runs = self.client.search_runs([self.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
        members = [r for r in runs if r.data.tags.get("ganas.config") and r.data.tags.get("ganas.final") != "true"]
        self._front_runs = {r.data.tags["ganas.config"]: r.info.run_id for r in members}
        self._front_complete = {r.data.tags["ganas.config"] for r in members if r.info.status == "FINISHED"}


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text[:6000]  # MLflow's limit on a param value


def front_plot_png(points: Sequence[tuple[float, float]], front: Sequence[tuple[float, float]], metric: str,
                   budgets: Sequence[int] = ()) -> bytes:
    """MACs vs metric scatter with the front drawn as a step line; PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)  # no pyplot: safe off the main thread
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    largest = max([p[0] for p in list(points) + list(front)] + list(budgets) + [1])
    scale, unit = (1e9, "G") if largest >= 1e9 else (1e6, "M")
    if points:
        ax.scatter([p[0] / scale for p in points], [p[1] for p in points], s=12, c="0.6", label="candidates")
    if front:
        ordered = sorted(front)
        ax.step([p[0] / scale for p in ordered], [p[1] for p in ordered], where="post", c="C3", marker="o",
                label="Pareto front")
    for b in budgets:
        ax.axvline(b / scale, ls="--", c="C0", lw=0.8)
    ax.set_xlabel(f"MACs ({unit})")
    ax.set_ylabel(metric)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def log_final_model(tracking_uri: str, artifact_root: Path, search_id: int, final: Any, onnx_path: Path,
                    model_name: str, teacher_macs: int | None) -> str:
    """Log a final model as an MLflow model (ONNX, with signature and input example) in a child run of the
    search's run, with its config, cost and figures next to the teacher's, and register it under
    ``model_name`` in the Model Registry; returns the model's URI (``models:/NAME/VERSION``).

    Safe to repeat (``ganas search sync``): the final's child run is found by its tags and reused, a model
    already registered from it is returned as it is, and only the figures the run lacks are logged."""
    import logging

    import mlflow
    import numpy as np
    import onnx
    from mlflow.models import infer_signature

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    tracker = SearchTracker(tracking_uri, artifact_root=artifact_root)
    client = tracker.client
    parent = tracker.find_search_run(search_id) or tracker.start_search(search_id, {})
    run_id = tracker.find_final_run(search_id, final.config) or client.create_run(
        tracker.experiment_id, run_name=f"final-{final.config}",
        tags={"mlflow.parentRunId": parent, "ganas.config": final.config, "ganas.final": "true",
              "ganas.search_id": str(search_id)}).info.run_id
    registered = client.search_model_versions(f"run_id = '{run_id}'")
    if registered:
        client.set_terminated(run_id)
        return f"models:/{registered[0].name}/{registered[0].version}"
    model = onnx.load(str(onnx_path))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    example = np.zeros([d or 1 for d in dims], dtype=np.float32)
    signature = infer_signature(example, example[:, :3] if example.shape[1] >= 3 else example)
    logged = client.get_run(run_id).data.metrics
    figures = {k: v for k, v in final_figures(final, teacher_macs).items() if k not in logged}
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_params({"config": final.config, "steps": final.steps, "split": final.split,
                           "budget": final.budget if final.budget is not None else "none"})
        mlflow.log_metrics(figures)
        info = mlflow.onnx.log_model(model, name="model", signature=signature, input_example=example,
                                     registered_model_name=model_name,
                                     onnx_execution_providers=["CPUExecutionProvider"])
    client.set_terminated(run_id)
    version = info.registered_model_version
    return f"models:/{model_name}/{version}" if version is not None else info.model_uri


def final_figures(final: Any, teacher_macs: int | None) -> dict[str, float]:
    """A final model's numbers as MLflow metrics: before/after fine-tuning and the teacher's, and the ratios."""
    figures = {"macs": float(final.macs), "params": float(final.params)}
    for prefix, values in (("before", final.before), ("after", final.after), ("teacher", final.teacher)):
        figures.update({f"{prefix}_{k}": float(v) for k, v in values.items()})
    if teacher_macs:
        figures["x_fewer_macs"] = teacher_macs / final.macs
    if final.latency_ms and final.teacher_latency_ms:
        figures.update(latency_ms=final.latency_ms, teacher_latency_ms=final.teacher_latency_ms,
                       x_faster=final.teacher_latency_ms / final.latency_ms)
    return figures
