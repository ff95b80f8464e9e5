"""The teacher as the reference a search's subnets are shown against: x fewer MACs, metric vs the teacher's.

The teacher's cost comes from its supernet's record (:class:`nas.teacher.TeacherInfo`), its figures
on the search split from the search's record (measured once by the orchestrator). The REST API and
the dashboard both compare through :class:`TeacherReference`, so they show the same ratios; where
no teacher is recorded, :func:`search_reference` says why instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .store import FinalRecord, SearchRecord, Store, SupernetRecord
from .teacher import TeacherInfo


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return float(numerator) / float(denominator)


@dataclass(frozen=True)
class MetricComparison:
    """One metric of a subnet next to the teacher's: ``ratio`` is subnet / teacher, ``difference`` subnet - teacher."""

    value: float
    teacher: float
    ratio: float | None  # None when the teacher's value is 0
    difference: float


@dataclass(frozen=True)
class Comparison:
    """A subnet against the teacher: ``macs_ratio`` is teacher MACs / subnet MACs ("x fewer MACs")."""

    macs_ratio: float | None
    params_ratio: float | None
    metrics: Mapping[str, MetricComparison]  # every metric both report


def compare_metrics(values: Mapping[str, float], teacher: Mapping[str, float]) -> dict[str, MetricComparison]:
    """Each metric in both ``values`` and ``teacher``, compared (in ``values``' order)."""
    return {name: MetricComparison(float(value), float(teacher[name]), _ratio(value, teacher[name]),
                                   float(value) - float(teacher[name]))
            for name, value in values.items() if name in teacher}


def times_fewer(teacher: float | None, subnet: float | None) -> float | None:
    """``teacher / subnet``: how many times fewer MACs (or parameters, or milliseconds) the subnet needs."""
    return _ratio(teacher, subnet)


@dataclass(frozen=True)
class TeacherReference:
    """A search's teacher: what it costs, and what it scores on the search split (empty until measured)."""

    info: TeacherInfo
    metrics: Mapping[str, float]
    evaluator: str | None
    split: str | None

    @property
    def macs(self) -> int:
        return self.info.macs

    @property
    def params(self) -> int:
        return self.info.params

    @property
    def measured(self) -> bool:
        return bool(self.metrics)

    def value(self, metric: str) -> float | None:
        value = self.metrics.get(metric)
        return None if value is None else float(value)

    def compare(self, macs: int, params: int, metrics: Mapping[str, float]) -> Comparison:
        return Comparison(times_fewer(self.macs, macs), times_fewer(self.params, params),
                          compare_metrics(metrics, self.metrics))


@dataclass(frozen=True)
class SearchReference:
    """The teacher of a search, or why there is none to compare with (``note``; also set when not yet measured)."""

    teacher: TeacherReference | None
    note: str | None

    def fewer_macs(self, macs: int) -> float | None:
        return times_fewer(self.teacher.macs, macs) if self.teacher else None

    def relative(self, metric: str, value: float) -> float | None:
        """``value`` as a fraction of the teacher's (1.0: the teacher's quality); None when not measured."""
        return _ratio(value, self.teacher.value(metric)) if self.teacher else None

    # -- the plain-text forms the CLI, the demo and MLflow use ------------------------------------------
    def fewer_macs_text(self, macs: int) -> str:
        ratio = self.fewer_macs(macs)
        return f"{ratio:.1f}x" if ratio is not None else "-"

    def versus_text(self, metric: str, value: float) -> str:
        ratio = self.relative(metric, value)
        return f"{100 * ratio:.1f}% ({value - self.teacher.value(metric):+.4f})" if ratio is not None else "-"

    def describe(self, metric: str) -> str:
        from .budget import format_macs

        if self.teacher is None:
            return f"teacher: none ({self.note})"
        value = self.teacher.value(metric)
        figure = f", {metric} {value:.4f} on {self.teacher.split}" if value is not None else \
            f", {metric} not measured yet"
        return f"teacher: {format_macs(self.teacher.macs)} MACs{figure}"


def reference_of(supernet: SupernetRecord, search: SearchRecord) -> SearchReference:
    """The teacher ``search`` compares its candidates with (its supernet's), and a note when something is missing."""
    info = TeacherInfo.from_dict(supernet.teacher)
    if info is None:
        return SearchReference(None, f"supernet {supernet.name!r} records no teacher (register it with --teacher "
                                     "FILE to compare its subnets with the teacher)")
    figures = dict(search.teacher or {})
    metrics = {str(k): float(v) for k, v in dict(figures.get("metrics") or {}).items()}
    note = None if metrics else ("the teacher has not been measured on the search split yet (the search's "
                                 "orchestrator does it once, when it runs)")
    return SearchReference(TeacherReference(info, metrics, figures.get("evaluator"), figures.get("split")), note)


def search_reference(store: Store, search_id: int) -> SearchReference:
    """:func:`reference_of` the search, read from ``store``."""
    search = store.get_search(search_id)
    return reference_of(store.get_supernet(search.supernet_id), search)


def compare_final(teacher: TeacherInfo | None, final: FinalRecord) -> Comparison | None:
    """A final model against its supernet's teacher: x fewer MACs and parameters, and its figures after fine-tuning
    against the teacher's (both on the held-out split); None without a teacher."""
    if teacher is None:
        return None
    return Comparison(times_fewer(teacher.macs, final.macs), times_fewer(teacher.params, final.params),
                      compare_metrics(final.after, final.teacher))
