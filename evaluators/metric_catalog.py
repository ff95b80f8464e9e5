"""Metrics by name, the built-in ones included: the look-ups the evaluator and the CLI use.

:mod:`evaluators.metrics` holds the contract and :func:`~evaluators.metrics.register_metric`; the
built-in metrics of :mod:`evaluators.metric_impls` register themselves there when imported. This
module sits above both and imports the built-ins, so whoever looks a metric up here sees them, and
the contract never imports its implementations (the import graph has no cycle).
"""
from __future__ import annotations

from typing import Iterable, Sequence

from . import metric_impls  # noqa: F401  (registers the built-in metrics)
from .metrics import DatasetTraits, Metric, MetricOptions, UnknownMetricError, registered_metrics


def list_metrics() -> list[str]:
    return registered_metrics().names()


def get_metric(name: str) -> type[Metric]:
    return registered_metrics().get(name)


def parse_metric_names(names: str | Iterable[str]) -> tuple[str, ...]:
    """``"fid,kid"`` or ``["fid", "kid"]`` -> checked, de-duplicated names in the given order."""
    items = names.split(",") if isinstance(names, str) else list(names)
    cleaned = [str(n).strip().lower() for n in items if str(n).strip()]
    if not cleaned:
        raise UnknownMetricError(f"no metric given; registered: {', '.join(list_metrics())}")
    for name in cleaned:
        get_metric(name)
    return tuple(dict.fromkeys(cleaned))


def check_metrics_available(names: Sequence[str], traits: DatasetTraits,
                            options: MetricOptions | None = None) -> None:
    """Raise the first reason one of ``names`` cannot be computed on a split with ``traits``."""
    for name in parse_metric_names(names):
        get_metric(name).check_available(traits, options or MetricOptions())
