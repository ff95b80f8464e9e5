"""Pareto fronts, non-dominated sorting, hypervolume, a search's front and the best candidate per budget.

Every objective is minimised or maximised on its own (``directions``); internally points are
turned into minimisation by negating maximised columns. Hypervolume is exact: a sweep in 2-D
and the WFG recursion (While, Bradstreet and Barone 2012) in higher dimensions, which is fast
for the front sizes a search produces (tens to a few hundred points).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence, TypeVar

import numpy as np

from evaluators.directions import DIRECTIONS
from foundation.errors import GanasError

from .objectives import DIRECTIONS, Objective

T = TypeVar("T")


class ParetoError(GanasError):
    """Points, directions or a reference point that do not fit together."""


def _minimization(points: Sequence[Sequence[float]] | np.ndarray,
                  directions: Sequence[str] | None) -> np.ndarray:
    """An (n, d) float array in which smaller is better in every column."""
    array = np.asarray(points, dtype=np.float64)
    if array.size == 0:
        d = len(directions) if directions is not None else 0
        return array.reshape(0, d)
    if array.ndim != 2:
        raise ParetoError(f"points must be a list of objective vectors (n x d); got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ParetoError("points contain NaN or infinite values; drop failed candidates first")
    return array * _signs(directions, array.shape[1])


def _signs(directions: Sequence[str] | None, d: int) -> np.ndarray:
    if directions is None:
        return np.ones(d)
    if len(directions) != d:
        raise ParetoError(f"{len(directions)} directions given for {d} objectives")
    bad = [x for x in directions if x not in DIRECTIONS]
    if bad:
        raise ParetoError(f"unknown direction {bad[0]!r}; use {' or '.join(DIRECTIONS)}")
    return np.array([1.0 if x == "minimize" else -1.0 for x in directions])


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str] | None = None) -> bool:
    """``a`` is no worse than ``b`` in every objective and better in at least one."""
    pair = _minimization([a, b], directions)
    return bool(np.all(pair[0] <= pair[1]) and np.any(pair[0] < pair[1]))


def _front_mask(values: np.ndarray) -> np.ndarray:
    """Non-dominated rows of a minimisation array (equal rows are all kept).

    Rows are visited in lexicographic order: a dominator is lexicographically smaller, and if a
    dominator is itself dominated, its own (earlier) dominator dominates the row too, so it is
    enough to compare each row with the front found so far.
    """
    n = len(values)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    order = np.lexsort(values.T[::-1])
    if values.shape[1] == 2:
        return _front_mask_2d(values, order, mask)
    front: list[int] = []
    for index in order:
        row = values[index]
        if front:
            kept = values[front]
            if np.any(np.all(kept <= row, axis=1) & np.any(kept < row, axis=1)):
                continue
        front.append(int(index))
        mask[index] = True
    return mask


def _front_mask_2d(values: np.ndarray, order: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """:func:`_front_mask` for two objectives in one sweep (a search's MACs-vs-metric front, thousands of points).

    In lexicographic order every earlier distinct row has a smaller or equal first value, so a row is
    dominated exactly when an earlier distinct row's second value is no larger: keep the best second
    value seen before the current run of equal rows.
    """
    best = run_best = np.inf
    previous = None
    rows = values.tolist()
    for index in order.tolist():
        row = rows[index]
        if row != previous:
            best, previous = min(best, run_best), row
            run_best = row[1]
        mask[index] = row[1] < best
    return mask


def pareto_front(points: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[str] | None = None) -> list[int]:
    """Indices (ascending) of the points no other point dominates."""
    return [int(i) for i in np.flatnonzero(_front_mask(_minimization(points, directions)))]


def non_dominated_sort(points: Sequence[Sequence[float]] | np.ndarray,
                       directions: Sequence[str] | None = None) -> list[list[int]]:
    """Points split into successive fronts: front 0 is the Pareto front, front 1 the front of the rest, ..."""
    values = _minimization(points, directions)
    remaining = np.arange(len(values))
    fronts: list[list[int]] = []
    while len(remaining):
        mask = _front_mask(values[remaining])
        fronts.append([int(i) for i in remaining[mask]])
        remaining = remaining[~mask]
    return fronts


def pareto_ranks(points: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[str] | None = None) -> list[int]:
    """The front number of each point (0 = on the Pareto front)."""
    ranks = [0] * len(points)
    for rank, front in enumerate(non_dominated_sort(points, directions)):
        for index in front:
            ranks[index] = rank
    return ranks


def hypervolume(points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float],
                directions: Sequence[str] | None = None) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (exact).

    The reference point is the worst corner (for a minimised objective, a value larger than
    any point's); points that do not strictly beat it in every objective add nothing.
    """
    ref = np.asarray(reference, dtype=np.float64)
    values = _minimization(points, directions)
    d = values.shape[1] if len(values) else len(ref)
    if ref.shape != (d,):
        raise ParetoError(f"reference point has {ref.size} values for {d} objectives")
    if not np.isfinite(ref).all():
        raise ParetoError("reference point must be finite")
    ref = ref * _signs(directions, d)
    inside = values[np.all(values < ref, axis=1)] if len(values) else values
    if len(inside) == 0:
        return 0.0
    return float(_wfg(_dominance_filter(inside), ref))


def _dominance_filter(values: np.ndarray) -> np.ndarray:
    """Distinct non-dominated rows: what the hypervolume recursion needs."""
    values = np.unique(values, axis=0)
    return values[_front_mask(values)]


def _hv2d(values: np.ndarray, ref: np.ndarray) -> float:
    """2-D sweep: sort by the first objective, add the horizontal strip each point opens."""
    area, best_y = 0.0, ref[1]
    for x, y in values[np.lexsort((values[:, 1], values[:, 0]))]:
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return area


def _wfg(front: np.ndarray, ref: np.ndarray) -> float:
    """WFG: the sum of each point's exclusive volume against the points after it."""
    if front.shape[1] == 1:
        return float(ref[0] - front[:, 0].min())
    if front.shape[1] == 2:
        return _hv2d(front, ref)
    front = front[np.argsort(-front[:, -1], kind="stable")]  # small limit sets first
    total = 0.0
    for i, point in enumerate(front):
        inclusive = float(np.prod(ref - point))
        rest = front[i + 1:]
        if len(rest):
            inclusive -= _wfg(_dominance_filter(np.maximum(rest, point)), ref)
        total += inclusive
    return total


def best_per_budget(items: Iterable[T], budgets: Sequence[int], *, macs: Callable[[T], int],
                    value: Callable[[T], float | None], direction: str = "minimize") -> dict[int, T | None]:
    """For each budget, the item with the best value among those with MACs <= budget.

    Items whose value is None or NaN (failed, not evaluated) are skipped; ties go to fewer
    MACs, then to the earlier item. A budget nothing fits maps to None.
    """
    sign = _signs([direction], 1)[0]
    scored = []
    for position, item in enumerate(items):
        v = value(item)
        if v is None or math.isnan(float(v)):
            continue
        scored.append((sign * float(v), int(macs(item)), position, item))
    scored.sort(key=lambda s: s[:3])
    result: dict[int, T | None] = {}
    for budget in budgets:
        result[budget] = next((s[3] for s in scored if s[1] <= budget), None)
    return result


class Evaluated(Protocol):
    """What :func:`front_of` reads of a candidate (the store's ``CandidateRecord`` has it)."""

    config: str
    macs: int
    metrics: Mapping[str, float]


E = TypeVar("E", bound=Evaluated)


def front_of(done: Sequence[E], metric: Objective, budgets: Sequence[Any]) -> tuple[list[E], float | None]:
    """Pareto front (MACs minimised vs ``metric`` in its direction) of done candidates, and its hypervolume.

    Candidates without a value for the metric are left out; the front is in ascending MACs (ties by
    config). The hypervolume's reference point is (largest budget, worst value), with the worst value 0
    for the maximised metrics (mIoU, SSIM, PSNR are >= 0) and 1.1 x the worst value seen for
    minimised ones (FID, KID).
    """
    usable = [c for c in done if metric.metric in c.metrics]
    if not usable:
        return [], None
    points = [(float(c.macs), float(c.metrics[metric.metric])) for c in usable]
    directions = ["minimize", metric.direction]
    front = sorted((usable[i] for i in pareto_front(points, directions)), key=lambda c: (c.macs, c.config))
    worst = 0.0 if metric.direction == "maximize" else 1.1 * max(p[1] for p in points)
    volume = hypervolume(points, (float(max(budgets)) * 1.0001, worst), directions)
    return front, volume
