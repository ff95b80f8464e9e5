"""Several searches' fronts side by side: one metric, one hypervolume reference point for all.

Each search's own hypervolume (:func:`nas.pareto.front_of`) uses its own reference point (its largest
budget, 1.1 x its worst value), so two searches' figures cannot be compared. Here the reference is
common: the largest budget of all the searches and 1.1 x the worst value any of them saw for a
minimised metric (0 for a maximised one), so a larger hypervolume means a better front. Searches of
different metrics are refused (:class:`IncomparableSearchesError`) with the groups that can be compared.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from foundation.errors import GanasError

from .pareto import hypervolume
from .reference import SearchReference, search_reference
from .store import CandidateStatus, SearchRecord, Store
from .summary import SearchSummary, chart_objective, summary_of

MAX_COMPARED = 12  # lines one chart can still tell apart


class IncomparableSearchesError(GanasError):
    """Searches whose fronts are of different metrics (or none asked for, or too many)."""


@dataclass(frozen=True)
class ComparedSearch:
    summary: SearchSummary
    reference: SearchReference  # its teacher
    hypervolume: float | None  # under the comparison's common reference point; None without a front


@dataclass(frozen=True)
class FrontComparison:
    metric: str
    direction: str
    reference_point: tuple[float, float] | None  # (MACs, metric); None when no search has a point yet
    searches: tuple[ComparedSearch, ...]


def metric_groups(store: Store) -> dict[str, tuple[int, ...]]:
    """Every search's id under the metric of its front (the searches that can be compared with each other)."""
    groups: dict[str, list[int]] = {}
    for search in store.list_searches():
        groups.setdefault(chart_objective(search).metric, []).append(search.id)
    return {metric: tuple(ids) for metric, ids in sorted(groups.items())}


def _describe_groups(groups: dict[str, tuple[int, ...]]) -> str:
    return "; ".join(f"{metric}: searches {', '.join(map(str, ids))}" for metric, ids in groups.items()) or "none"


def compare_searches(store: Store, search_ids: Sequence[int], metric: str | None = None) -> FrontComparison:
    """The fronts of ``search_ids`` (each search's chart metric, or ``metric``), with hypervolumes under one
    reference point. An unknown id raises the store's NotFoundError; different metrics, IncomparableSearchesError."""
    ids = list(dict.fromkeys(search_ids))
    if not ids:
        raise IncomparableSearchesError("choose the searches to compare: /compare?search=1&search=2 (searches by "
                                        f"metric: {_describe_groups(metric_groups(store))})")
    if len(ids) > MAX_COMPARED:
        raise IncomparableSearchesError(f"{len(ids)} searches asked for; compare at most {MAX_COMPARED} at once")
    searches = [store.get_search(i) for i in ids]
    objectives = {s.id: chart_objective(s, metric) for s in searches}
    kinds = {(o.metric, o.direction) for o in objectives.values()}
    if len(kinds) > 1:
        which = ", ".join(f"search {i} {o.metric}" for i, o in objectives.items())
        raise IncomparableSearchesError(
            f"these searches measure different metrics ({which}): only fronts of one metric can be compared. "
            f"Searches by metric: {_describe_groups(metric_groups(store))}")
    objective = objectives[ids[0]]
    _check_same_teacher(store, searches, objective.metric)
    summaries = [summary_of(s, store.candidates(s.id, CandidateStatus.DONE), objective.metric) for s in searches]
    return _with_common_reference(store, searches, summaries, objective.metric, objective.direction)


def _check_same_teacher(store: Store, searches: Sequence[SearchRecord], metric: str) -> None:
    """A teacher-fidelity metric (teacher-ssim, ...) scores each search against its supernet's teacher: fronts
    against different teachers (an OMGD supernet's online teacher and a GAN Compression one's) are not compared."""
    from .registry import needs_teacher

    if len(searches) < 2 or not needs_teacher(metric):
        return
    teachers: dict[str | None, list[int]] = {}
    for search in searches:
        recorded = store.get_supernet(search.supernet_id).teacher or {}
        teachers.setdefault(recorded.get("sha256"), []).append(search.id)
    if len(teachers) > 1:
        which = "; ".join(f"searches {', '.join(map(str, ids))}: " + (f"teacher sha256 {sha[:12]}..." if sha else
                                                                      "no teacher") for sha, ids in teachers.items())
        raise IncomparableSearchesError(f"{metric} scores each search against its supernet's teacher, and these "
                                        f"searches have different teachers ({which}): only fronts against one "
                                        "teacher can be compared")


def _with_common_reference(store: Store, searches: Sequence[SearchRecord], summaries: Sequence[SearchSummary],
                           metric: str, direction: str) -> FrontComparison:
    values = [p.value for s in summaries for p in s.front.points]
    budgets = [b for s in searches for b in s.budgets]
    point = None
    if values and budgets:
        worst = 0.0 if direction == "maximize" else 1.1 * max(values)
        point = (float(max(budgets)) * 1.0001, worst)  # as front_of: a point at the largest budget still counts
    compared = []
    for search, summary in zip(searches, summaries):
        front = [(float(p.macs), p.value) for p in summary.front.front]
        volume = hypervolume(front, point, ["minimize", direction]) if front and point else None
        compared.append(ComparedSearch(summary, search_reference(store, search.id), volume))
    return FrontComparison(metric, direction, point, tuple(compared))
