"""A search objective: a metric name and the direction in which it is better.

One record for the whole of ``nas``: the store keeps it (``{"metric": ..., "direction": ...}``),
strategies rank by it, the Pareto helpers and the service plot it. The name :data:`MACS` means
the candidate's closed-form MACs, which every candidate has; other names are metrics that a
worker reports (``fid``, ``miou``, ...; see :func:`nas.registry.search_metrics`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from evaluators.directions import DIRECTIONS
from foundation.errors import GanasError

MACS = "macs"  # the objective whose value is the candidate's MACs
MAX_METRIC_LENGTH = 255


class ObjectiveError(GanasError):
    """An objective without a usable metric name or with an unknown direction."""


@dataclass(frozen=True)
class Objective:
    """A metric to optimise and its direction (``minimize`` or ``maximize``)."""

    metric: str
    direction: str = "minimize"

    def __post_init__(self) -> None:
        metric = self.metric
        if not isinstance(metric, str) or not metric.strip() or metric != metric.strip():
            raise ObjectiveError(f"an objective needs a metric name without surrounding spaces, got {metric!r}")
        if len(metric) > MAX_METRIC_LENGTH:
            raise ObjectiveError(f"objective metric is {len(metric)} characters long; at most {MAX_METRIC_LENGTH}")
        if self.direction not in DIRECTIONS:
            raise ObjectiveError(f"objective {metric}: direction {self.direction!r} is not one of: "
                                 f"{', '.join(DIRECTIONS)}")

    @classmethod
    def coerce(cls, value: Any) -> "Objective":
        """An Objective from itself, a ``(metric, direction)`` pair, a mapping with those keys, or a string
        ``"fid"`` / ``"miou:maximize"``."""
        if isinstance(value, Objective):
            return value
        if isinstance(value, str):
            metric, _, direction = value.partition(":")
            return cls(metric, direction or "minimize")
        if isinstance(value, Mapping):
            return cls(value.get("metric"), value.get("direction", "minimize"))
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return cls(*value)
        raise ObjectiveError(f"objective {value!r} is not a metric name, 'metric:direction', a (metric, direction) "
                             "pair or a mapping with those keys")

    def oriented(self, value: float) -> float:
        """The value turned so that smaller is better."""
        return value if self.direction == "minimize" else -value

    def to_dict(self) -> dict[str, str]:
        return {"metric": self.metric, "direction": self.direction}
