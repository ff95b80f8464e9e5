"""Latency as a metric: the static model's measured batch-1 time at the evaluation size (median, ms)."""
from __future__ import annotations

from torch import nn

from ..latency import LatencyResult, get_backend, measure_latency
from ..metrics import DatasetTraits, Metric, MetricOptions, MetricValue, Need, Size, register_metric


@register_metric
class Latency(Metric):
    """Median of timed batch-1 runs; ``latency_p90_ms`` as an extra. Identity: backend, device, threads."""

    name = "latency"
    direction = "minimize"
    needs = frozenset({Need.MODEL})
    cost = True
    description = "measured batch-1 latency (ms, median) of the static model at the evaluation size"

    @classmethod
    def check_available(cls, traits: DatasetTraits, options: MetricOptions) -> None:
        super().check_available(traits, options)
        get_backend(options.latency_backend)  # an unknown backend fails before any work

    def start(self, model: nn.Module | None, size: Size) -> None:
        options = self.context.options
        device = options.latency_device or str(self.context.device)
        self._result: LatencyResult = measure_latency(model, size, options.latency_backend, device,
                                                      options.latency_runs, options.latency_warmup,
                                                      options.latency_threads)

    @property
    def identity(self) -> str:
        result = self._result
        return f"latency:{result.backend}:{result.device}:{result.threads}threads"

    def compute(self) -> MetricValue:
        return MetricValue(self._result.median_ms, {"latency_p90_ms": self._result.p90_ms})
