"""Measured latency: statistics by hand, the three backends agree, settings are recorded and restored."""
from __future__ import annotations

import contextlib
import time

import numpy as np
import pytest
import torch
from torch import nn

from evaluators.latency import (LatencyError, LatencyResult, list_backends, measure_latency, percentile_summary,
                                prepare_runner, time_runner)
from foundation.errors import GanasError
from supernet import create_generator
from supernet.errors import InputSizeError

from .evaluation_helpers import one_torch_thread  # noqa: F401


class Sleeper(nn.Module):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return self.conv(x)


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.InstanceNorm2d(6), nn.ReLU(), nn.Conv2d(6, 3, 3, padding=1),
                         nn.Tanh())


def test_percentile_summary_by_hand():
    # median of 1..10 is (5 + 6) / 2; p90 by linear interpolation: rank 0.9 * 9 = 8.1 -> 9 + 0.1 * (10 - 9)
    assert percentile_summary([float(v) for v in range(10, 0, -1)]) == pytest.approx((5.5, 9.1))
    assert percentile_summary([3.0]) == (3.0, 3.0)
    assert percentile_summary([1.0, 2.0, 100.0]) == pytest.approx((2.0, 100.0 - 0.2 * 98.0))
    with pytest.raises(LatencyError):
        percentile_summary([])


def test_time_runner_counts_warmup_and_runs():
    calls = []
    times = time_runner(lambda: calls.append(1), runs=4, warmup=3)
    assert len(calls) == 7 and len(times) == 4 and all(t >= 0 for t in times)


def test_measure_latency_times_the_forward_pass_and_records_settings():
    model = Sleeper(0.004).train()
    result = measure_latency(model, 8, runs=5, warmup=1)
    assert isinstance(result, LatencyResult)
    assert result.median_ms >= 4.0 and result.p90_ms >= result.median_ms
    assert (result.backend, result.device, result.size, result.runs, result.warmup) == ("eager", "cpu", (8, 8), 5, 1)
    assert result.threads == torch.get_num_threads()
    assert model.training  # the caller's model is left as it was
    assert result.to_json()["size"] == [8, 8] and "ms median" in result.describe()


def test_threads_are_set_for_the_measurement_and_restored():
    before = torch.get_num_threads()
    result = measure_latency(tiny_net(), (8, 12), runs=2, warmup=0, threads=1)
    assert result.threads == 1 and result.size == (8, 12)
    assert torch.get_num_threads() == before


def test_backends_registered_and_agree_numerically():
    assert list_backends() == ["eager", "torchscript", "onnxruntime"]
    model = tiny_net()
    outputs = {}
    for backend in list_backends():
        with contextlib.ExitStack() as stack:
            run = prepare_runner(model, (16, 16), backend, "cpu", 1, stack, seed=3)
            out = run()
            outputs[backend] = out if isinstance(out, np.ndarray) else out.detach().numpy()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    for backend, out in outputs.items():
        np.testing.assert_allclose(out, expected, atol=1e-5, err_msg=backend)


def test_each_backend_measures_a_mobile_resnet_subnet():
    torch.manual_seed(0)
    subnet = create_generator("mobile_resnet", ngf=8, n_blocks=3, config=(4, 4, 8, 4, 8, 4, 8, 4))
    for backend in ("torchscript", "onnxruntime"):
        result = measure_latency(subnet, 16, backend=backend, runs=2, warmup=1)
        assert result.backend == backend and result.median_ms > 0 and result.p90_ms >= result.median_ms


def test_bad_settings_are_typed_errors():
    model = tiny_net()
    with pytest.raises(LatencyError, match="unknown latency backend 'tensorrt'; registered: eager, torchscript"):
        measure_latency(model, 8, backend="tensorrt")
    with pytest.raises(LatencyError, match="runs on cpu, not cuda"):
        measure_latency(model, 8, backend="onnxruntime", device="cuda")
    with pytest.raises(LatencyError, match="runs >= 1"):
        measure_latency(model, 8, runs=0)
    with pytest.raises(LatencyError, match="threads must be at least 1"):
        measure_latency(model, 8, threads=0)
    with pytest.raises(LatencyError, match="unknown device"):
        measure_latency(model, 8, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(LatencyError, match="no CUDA device"):
            measure_latency(model, 8, device="cuda")
    generator = create_generator("resnet", ngf=4, n_blocks=1)
    with pytest.raises(InputSizeError, match="not a multiple of 4"):
        measure_latency(generator, 10, runs=1)
    assert issubclass(LatencyError, GanasError)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_latency_synchronizes_and_reports_the_device():
    result = measure_latency(Sleeper(0.002), 16, device="cuda", runs=3, warmup=1)
    assert result.device == "cuda" and result.median_ms >= 2.0
