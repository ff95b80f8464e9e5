"""The Pareto-front chart as plain geometry for an inline SVG (no JavaScript, no plotting library).

MACs run along x from zero, the metric along y (larger values up, whatever the direction). The
front is drawn as a step line that stays flat to the right edge: for any MACs budget on the x
axis, the line's height is the best value found within that budget. Budgets are dashed
vertical lines; every candidate is a point that links to its page. The teacher, when measured, is
a horizontal reference line at its metric, labelled with its value and MACs (usually far right of
the budgets, so it is a marker only when it falls inside the chart).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from .read_model import SearchFront, format_macs


@dataclass(frozen=True)
class Tick:
    position: float  # pixels along the axis
    label: str


@dataclass(frozen=True)
class PlotPoint:
    x: float
    y: float
    config: str
    href: str
    title: str
    on_front: bool


@dataclass(frozen=True)
class BudgetLine:
    x: float
    label: str


@dataclass(frozen=True)
class TeacherLine:
    """The teacher's metric as a horizontal line; ``x`` places a marker at its MACs when they are on the chart."""

    y: float
    label: str
    x: float | None


@dataclass(frozen=True)
class FrontPlot:
    """Everything the SVG template draws, in pixels (origin top-left)."""

    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    points: tuple[PlotPoint, ...]  # dominated first, so front points are drawn on top
    step_path: str
    budget_lines: tuple[BudgetLine, ...]
    x_label: str
    y_label: str
    teacher: TeacherLine | None = None
    left_out: int = 0  # dominated points not drawn (more than max_points); the interactive chart has them all


def nice_step(span: float, count: int) -> float:
    """A 1, 2 or 5 x 10^k step giving about ``count`` intervals over ``span`` (Heckbert's nice numbers)."""
    raw = span / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def nice_range(low: float, high: float, count: int = 5) -> tuple[float, float, float]:
    """``(start, stop, step)``: the smallest range of whole steps covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"axis range [{low}, {high}] is not finite")
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.05 or 1.0
        low, high = low - pad, high + pad
    step = nice_step(high - low, count)
    return math.floor(low / step + 1e-9) * step, math.ceil(high / step - 1e-9) * step, step


def _ticks(start: float, stop: float, step: float) -> list[float]:
    n = int(round((stop - start) / step))
    return [start + i * step for i in range(n + 1)]


def _number(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:.{decimals}f}"


MAX_POINTS = 1500  # an SVG of more circles is slow to render and no more readable: dominated ones are thinned


def _thinned(points: Sequence, limit: int) -> tuple[list, int]:
    """Every front member, and evenly spaced dominated points up to ``limit`` in all; how many were left out."""
    members = [p for p in points if p.on_front]
    others = [p for p in points if not p.on_front]
    room = max(limit - len(members), 0)
    if len(others) <= room:
        return others + members, 0
    kept = [others[round(i * len(others) / room)] for i in range(room)] if room else []
    return kept + members, len(others) - len(kept)


def front_plot(front: SearchFront, budgets: Sequence[int], href: Callable[[str], str],
               width: int = 760, height: int = 420, teacher_value: float | None = None,
               teacher_macs: int | None = None, max_points: int = MAX_POINTS) -> FrontPlot | None:
    """Lay out ``front`` (None when there is nothing to plot), with the teacher's line at ``teacher_value``; at
    most ``max_points`` points are drawn (every front member, dominated ones thinned evenly), all set the axes."""
    if not front.points:
        return None
    left, right, top, bottom = 72.0, width - 24.0, 40.0, height - 52.0
    macs_high = max([p.macs for p in front.points] + list(budgets))
    x_start, x_stop, x_step = nice_range(0.0, macs_high * 1.02)
    values = [p.value for p in front.points] + ([] if teacher_value is None else [teacher_value])
    pad = (max(values) - min(values)) * 0.04  # keep points off the frame
    y_start, y_stop, y_step = nice_range(min(values) - pad, max(values) + pad)

    def sx(macs: float) -> float:
        return round(left + (macs - x_start) / (x_stop - x_start) * (right - left), 2)

    def sy(value: float) -> float:
        return round(bottom - (value - y_start) / (y_stop - y_start) * (bottom - top), 2)

    x_ticks = tuple(Tick(sx(v), format_macs(v) if v else "0") for v in _ticks(x_start, x_stop, x_step))
    y_ticks = tuple(Tick(sy(v), _number(v, y_step)) for v in _ticks(y_start, y_stop, y_step))
    ordered, left_out = _thinned(front.points, max_points)  # dominated first: front points drawn on top
    points = tuple(PlotPoint(sx(p.macs), sy(p.value), p.config, href(p.config),
                             f"{p.config}: {format_macs(p.macs)} MACs, {front.metric} {p.value:.4g}"
                             + (" (Pareto front)" if p.on_front else ""), p.on_front) for p in ordered)
    path = ""
    if front.front:
        first = front.front[0]
        parts = [f"M{sx(first.macs)},{sy(first.value)}"]
        for member in front.front[1:]:
            parts.append(f"H{sx(member.macs)}V{sy(member.value)}")
        parts.append(f"H{right}")
        path = "".join(parts)
    lines = tuple(BudgetLine(sx(b), f"budget {format_macs(b)}") for b in budgets)
    better = "lower is better" if front.direction == "minimize" else "higher is better"
    teacher = None
    if teacher_value is not None:
        inside = teacher_macs is not None and teacher_macs <= x_stop
        where = "" if teacher_macs is None else (f" at {format_macs(teacher_macs)} MACs"
                                                 + ("" if inside else " (off the chart, to the right)"))
        teacher = TeacherLine(sy(teacher_value), f"teacher: {front.metric} {teacher_value:.4g}{where}",
                              sx(teacher_macs) if inside else None)
    return FrontPlot(width, height, left, right, top, bottom, x_ticks, y_ticks, points, path, lines,
                     "MACs per image", f"{front.metric} ({better})", teacher, left_out)
