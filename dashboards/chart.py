"""The interactive front's data: every finished candidate of a search as columns, for plotly.js (``static/front.js``).

The page embeds it as JSON; the browser draws it (hover, zoom, axis selectors, click-through). Columns
rather than one object per point keep a 10,000-candidate page small. Axes are a registry: MACs and
parameters always, CPU latency when final models measured it, and every metric the candidates report.
The teacher comes along as the reference (its cost, latency and figures), so the browser computes the
same ratios as the tables (teacher MACs / MACs; metric / teacher's metric).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .read_model import CandidateRecord, CandidateStatus, FinalRow, FrontComparison, SearchReference, SearchSummary

SHOWN = (CandidateStatus.DONE, CandidateStatus.FAILED, CandidateStatus.INFEASIBLE)  # finished: a point each


@dataclass(frozen=True)
class Axis:
    key: str  # "macs", "params", "latency_ms", "metric:fid"
    label: str
    log: bool = False  # a cost spans orders of magnitude: offered on a log scale


def axes(metric_names: Sequence[str], directions: Mapping[str, str], has_latency: bool) -> list[Axis]:
    costs = [Axis("macs", "MACs per image", True), Axis("params", "parameters", True)]
    if has_latency:
        costs.append(Axis("latency_ms", "CPU latency of the final model (ms)", True))
    metrics = [Axis(f"metric:{m}", f"{m} ({'higher' if directions.get(m) == 'maximize' else 'lower'} is better)")
               for m in metric_names]
    return costs + metrics


def front_chart(summary: SearchSummary, records: Sequence[CandidateRecord], finals: Sequence[FinalRow],
                reference: SearchReference, candidates_url: str) -> dict[str, Any]:
    """What ``static/front.js`` draws: the finished candidates as columns, the axes, the budgets and the teacher;
    a point's page is ``candidates_url`` + its config."""
    search = summary.search
    shown = [c for c in records if c.status in SHOWN]
    latency = {row.record.config: row.record.latency_ms for row in finals if row.record.latency_ms is not None}
    teacher_latency = next((row.record.teacher_latency_ms for row in finals
                            if row.record.teacher_latency_ms is not None), None)
    metric_names = sorted({m for c in shown for m in c.metrics} | {summary.objective.metric})
    directions = {o.metric: o.direction for o in search.objectives}
    members = {p.config for p in summary.front.front}
    columns = {
        "config": [c.config for c in shown],
        "status": [c.status.value for c in shown],
        "macs": [c.macs for c in shown],
        "params": [c.params for c in shown],
        "latency_ms": [latency.get(c.config) for c in shown],
        "on_front": [c.config in members for c in shown],
        "error": [c.error or "" for c in shown],
        "metrics": {m: [c.metrics.get(m) for c in shown] for m in metric_names},
    }
    teacher = reference.teacher
    return {
        "search_id": search.id,
        "candidates_url": candidates_url,
        "metric": summary.objective.metric,
        "directions": directions,
        "budgets": list(search.budgets),
        "columns": columns,
        "axes": [a.__dict__ for a in axes(metric_names, directions, bool(latency))],
        "x": "macs",
        "y": f"metric:{summary.objective.metric}",
        "front": [p.config for p in summary.front.front],
        "teacher": None if teacher is None else {
            "macs": teacher.macs, "params": teacher.params, "latency_ms": teacher_latency,
            "metrics": dict(teacher.metrics)},
    }


def compare_chart(comparison: FrontComparison, href: Callable[[int, str], str]) -> dict[str, Any]:
    """What ``static/compare.js`` draws: each search's done points and front, its teacher, the common reference."""
    searches = []
    for compared in comparison.searches:
        summary, teacher = compared.summary, compared.reference.teacher
        points = summary.front.points
        searches.append({
            "id": summary.search.id,
            "label": f"search {summary.search.id}: {summary.search.supernet}, {summary.search.strategy}",
            "hypervolume": compared.hypervolume,
            "config": [p.config for p in points], "macs": [p.macs for p in points],
            "value": [p.value for p in points], "on_front": [p.on_front for p in points],
            "href": [href(summary.search.id, p.config) for p in points],
            "front": [[p.macs, p.value] for p in summary.front.front],
            "teacher": None if teacher is None or teacher.value(comparison.metric) is None else {
                "macs": teacher.macs, "value": teacher.value(comparison.metric)},
        })
    budgets = sorted({b for c in comparison.searches for b in c.summary.search.budgets})
    return {"metric": comparison.metric, "direction": comparison.direction, "budgets": budgets,
            "reference_point": comparison.reference_point, "searches": searches}
