"""What a search has found so far: its front (MACs vs a metric), best per budget, hypervolume, progress.

Computed from the store's records with :mod:`nas.pareto`, for the CLI, the REST API, MLflow and
the dashboard alike, so all show the same numbers. Only ``done`` candidates that report the
metric count; failed, infeasible and unfinished ones have no value. :class:`RunningFront` keeps
the same figures up to date batch by batch while a search runs, without re-reading the store.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from nas.objectives import MACS, Objective
from nas.pareto import best_per_budget, front_of, hypervolume
from nas.store import CandidateCounts, CandidateRecord, CandidateStatus, InvalidValueError, SearchRecord, Store

@dataclass(frozen=True)
class FrontPoint:
    """A done candidate as a point of the MACs-vs-metric plane."""

    config: str
    macs: int
    params: int
    value: float
    on_front: bool


@dataclass(frozen=True)
class SearchFront:
    """Done candidates on the MACs-vs-metric plane, their Pareto front and its hypervolume.

    Front and hypervolume are :func:`nas.pareto.front_of`'s (reference point: the largest budget, and 1.1 x
    the worst value seen for a minimised metric, 0 for a maximised one).
    """

    metric: str
    direction: str
    points: tuple[FrontPoint, ...]  # proposal order
    front: tuple[FrontPoint, ...]  # ascending MACs
    hypervolume: float | None


@dataclass(frozen=True)
class BudgetBest:
    """The best done candidate within one MACs budget (None: nothing evaluated fits yet)."""

    budget: int
    candidate: CandidateRecord | None


def finished_count(counts: CandidateCounts) -> int:
    """Candidates whose evaluation is over (done, failed or rejected as infeasible)."""
    return counts.done + counts.failed + counts.infeasible


def progress_fraction(counts: CandidateCounts, trials: int) -> float:
    """Finished candidates as a fraction of the trials asked for, capped at 1."""
    return min(1.0, finished_count(counts) / trials) if trials else 1.0


@dataclass(frozen=True)
class SearchSummary:
    """A search's state, counts, front and best candidate per budget, as every view shows them."""

    search: SearchRecord
    counts: CandidateCounts
    objective: Objective
    front: SearchFront
    best: tuple[BudgetBest, ...]

    @property
    def search_id(self) -> int:
        return self.search.id

    @property
    def state(self) -> str:
        return self.search.state.value

    @property
    def finished(self) -> int:
        return finished_count(self.counts)

    @property
    def progress(self) -> float:
        return progress_fraction(self.counts, self.search.trials)

    @property
    def hypervolume(self) -> float | None:
        return self.front.hypervolume

    def best_by_budget(self) -> dict[int, CandidateRecord | None]:
        return {b.budget: b.candidate for b in self.best}


def chart_objective(search: SearchRecord, metric: str | None = None) -> Objective:
    """The objective plotted against MACs: ``metric`` if given, else the first one that is not MACs."""
    if metric is not None:
        for objective in search.objectives:
            if objective.metric == metric:
                return objective
        names = ", ".join(o.metric for o in search.objectives)
        raise InvalidValueError(f"search {search.id} has no objective {metric!r}; its objectives: {names}")
    others = [o for o in search.objectives if o.metric != MACS]  # MACs are the x axis, never the y axis
    return others[0] if others else search.objectives[0]


def _value(candidate: CandidateRecord, metric: str) -> float | None:
    value = candidate.metrics.get(metric)
    return None if value is None else float(value)


def search_front(search: SearchRecord, candidates: Sequence[CandidateRecord], objective: Objective) -> SearchFront:
    """The MACs-vs-metric Pareto front of the done candidates (MACs minimised, metric in its direction)."""
    done = [c for c in candidates if c.status == CandidateStatus.DONE and _value(c, objective.metric) is not None]
    members, volume = front_of(done, objective, search.budgets) if done and search.budgets else ([], None)
    on_front = {c.config for c in members}
    points = tuple(FrontPoint(c.config, c.macs, c.params, _value(c, objective.metric), c.config in on_front)
                   for c in done)
    by_config = {p.config: p for p in points}
    return SearchFront(objective.metric, objective.direction, points, tuple(by_config[c.config] for c in members),
                       volume)


def budget_bests(search: SearchRecord, candidates: Sequence[CandidateRecord], objective: Objective
                 ) -> tuple[BudgetBest, ...]:
    """For each budget of the search, its best done candidate by the objective."""
    done = [c for c in candidates if c.status == CandidateStatus.DONE]
    best = best_per_budget(done, search.budgets, macs=lambda c: c.macs,
                           value=lambda c: _value(c, objective.metric), direction=objective.direction)
    return tuple(BudgetBest(budget, best[budget]) for budget in search.budgets)


def summarize(store: Store, search_id: int, metric: str | None = None) -> SearchSummary:
    """Everything the search page and ``GET /api/searches/{id}`` show, from one read of the store."""
    return summary_of(store.get_search(search_id), store.candidates(search_id), metric)


def summary_of(search: SearchRecord, records: Sequence[CandidateRecord], metric: str | None = None) -> SearchSummary:
    """:func:`summarize` over ``records``, every candidate of ``search`` (for a caller that needs them too)."""
    objective = chart_objective(search, metric)
    counts = CandidateCounts(**{s.value: sum(1 for c in records if c.status == s) for s in CandidateStatus})
    return SearchSummary(search, counts, objective, search_front(search, records, objective),
                         budget_bests(search, records, objective))


@dataclass
class RunningFront:
    """The front, hypervolume and best per budget of a running search, updated batch by batch.

    The Pareto front of all points is the front of (old front + new points), and the
    hypervolume of a point set is that of its front, so each update costs the batch plus the
    front, never a re-read of the whole search. Equals :func:`summarize` at every step.
    """

    metric: str
    direction: str
    budgets: tuple[int, ...]
    done: int = 0
    failed: int = 0
    members: list[CandidateRecord] = field(default_factory=list)
    points: list[tuple[int, float]] = field(default_factory=list)  # every done (MACs, value): the front plot
    worst: float | None = None  # the largest value seen: a minimised metric's hypervolume reference
    hypervolume: float | None = None

    @classmethod
    def of(cls, search: SearchRecord, records: Iterable[CandidateRecord] = ()) -> "RunningFront":
        objective = chart_objective(search)
        running = cls(objective.metric, objective.direction, tuple(search.budgets))
        running.add(records)
        return running

    def add(self, records: Iterable[CandidateRecord]) -> bool:
        """Count finished records and merge the done ones; True when the front changed."""
        new = []
        for c in records:
            if c.status == CandidateStatus.FAILED:
                self.failed += 1
            elif c.status == CandidateStatus.DONE:
                self.done += 1
                value = _value(c, self.metric)
                if value is not None:
                    new.append(c)
                    self.points.append((c.macs, value))
                    self.worst = value if self.worst is None else max(self.worst, value)
        if not new:
            return False
        before = [c.config for c in self.members]
        self.members, _ = front_of(self.members + new, Objective(self.metric, self.direction), self.budgets)
        reference = (float(max(self.budgets)) * 1.0001,
                     0.0 if self.direction == "maximize" else 1.1 * float(self.worst))
        self.hypervolume = hypervolume([(float(c.macs), float(c.metrics[self.metric])) for c in self.members],
                                       reference, ["minimize", self.direction])
        return [c.config for c in self.members] != before

    def best(self) -> dict[int, CandidateRecord | None]:
        """The best member within each budget (the best under a budget is always on the front)."""
        return best_per_budget(self.members, self.budgets, macs=lambda c: c.macs,
                               value=lambda c: _value(c, self.metric), direction=self.direction)
