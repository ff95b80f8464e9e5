"""Measured batch-1 latency of a model at one resolution, per backend (eager, TorchScript, ONNX Runtime).

MACs are not latency: on CPUs the separable convs of a compressed generator are memory-bound,
so a 21.7x MACs cut gave only 3.7x speed (docs/benchmarks.md). Latency is measured, never
estimated: ``warmup`` untimed runs (allocator, caches, lazy initialisation), then ``runs`` timed
runs of one ``(1, C, H, W)`` input; the median and the 90th percentile (numpy's linear
interpolation) are reported with the number of threads, because CPU timings depend on it.
On CUDA every timed run is bracketed by ``torch.cuda.synchronize()`` so the time covers the
kernels, not only their launch. Backends are registered by name (:func:`list_backends`).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from foundation.errors import GanasError
from foundation.registry import Registry

Runner = Callable[[], Any]  # one forward pass of the prepared model on its fixed input
Size = tuple[int, int]


class LatencyError(GanasError):
    """An unknown backend or device, a backend that cannot run on a device, or bad timing settings."""


@dataclass(frozen=True)
class LatencyResult:
    """Batch-1 latency of one model: median and 90th percentile over ``runs`` timed runs, in ms."""

    backend: str
    device: str
    threads: int
    size: Size
    runs: int
    median_ms: float
    p90_ms: float
    warmup: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["size"] = list(self.size)
        return data

    def describe(self) -> str:
        return (f"{self.median_ms:.2f} ms median, {self.p90_ms:.2f} ms p90 ({self.backend}, {self.device}, "
                f"{self.threads} threads, {self.size[0]}x{self.size[1]}, {self.runs} runs)")


@dataclass(frozen=True)
class LatencyBackend:
    """How to turn a model and its example input into a :data:`Runner`; ``devices``: device types it supports."""

    name: str
    description: str
    devices: tuple[str, ...]
    prepare: Callable[[nn.Module, Tensor, int, contextlib.ExitStack], Runner]


_BACKENDS: Registry[LatencyBackend] = Registry("latency backend", LatencyError, sort=False, key="name")
register_backend, list_backends, get_backend = _BACKENDS.add, _BACKENDS.names, _BACKENDS.get  # register, list, look up


# ----------------------------------------------------------------------------- backends

def _prepare_eager(model: nn.Module, x: Tensor, threads: int, stack: contextlib.ExitStack) -> Runner:
    def run() -> Tensor:
        with torch.no_grad():
            return model(x)
    return run


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """torch 2.13 marks torch.jit deprecated (it stays for runtimes that need it) and warns while tracing
    shape checks; neither is a problem for a fixed-shape timing run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def _prepare_torchscript(model: nn.Module, x: Tensor, threads: int, stack: contextlib.ExitStack) -> Runner:
    with _quiet_tracing(), torch.no_grad():
        traced = torch.jit.trace(model, (x,), check_trace=False)
        traced = torch.jit.freeze(traced.eval())

    def run() -> Tensor:
        with torch.no_grad():
            return traced(x)
    return run


@contextlib.contextmanager
def _quiet_onnx_export() -> Iterator[None]:
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")  # "torchvision is not installed"
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)


def _prepare_onnxruntime(model: nn.Module, x: Tensor, threads: int, stack: contextlib.ExitStack) -> Runner:
    import onnxruntime

    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ganas-latency-")))
    path = folder / "model.onnx"
    try:
        with _quiet_onnx_export(), torch.no_grad():
            program = torch.onnx.export(model, (x,), dynamo=True, verbose=False, input_names=["input"],
                                        output_names=["output"])
            program.save(str(path), external_data=False)
    except Exception as exc:  # the exporter raises many types for unsupported operators
        raise LatencyError(f"the model cannot be exported to ONNX for timing ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}); use the eager or torchscript "
                           "backend") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads  # the same thread count as torch, so backends compare
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {"input": x.detach().cpu().numpy()}

    def run() -> np.ndarray:
        return session.run(["output"], feed)[0]
    return run


register_backend(LatencyBackend("eager", "PyTorch eager mode, no_grad", ("cpu", "cuda"), _prepare_eager))
register_backend(LatencyBackend("torchscript", "torch.jit.trace + freeze at the fixed input shape", ("cpu", "cuda"),
                                _prepare_torchscript))
register_backend(LatencyBackend("onnxruntime", "ONNX export (torch.export-based) run by ONNX Runtime's CPU "
                                "execution provider", ("cpu",), _prepare_onnxruntime))


# ----------------------------------------------------------------------------- timing

def percentile_summary(times_ms: Sequence[float]) -> tuple[float, float]:
    """(median, 90th percentile) of timings, numpy's linear interpolation between order statistics."""
    if len(times_ms) == 0:
        raise LatencyError("no timings to summarise")
    values = np.asarray(times_ms, dtype=np.float64)
    return float(np.median(values)), float(np.percentile(values, 90))


def _check_device(device: str, backend: LatencyBackend) -> torch.device:
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise LatencyError(f"unknown device {device!r}; use cpu or cuda") from None
    if resolved.type not in backend.devices:
        raise LatencyError(f"the {backend.name} backend runs on {', '.join(backend.devices)}, not {device}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise LatencyError("CUDA latency was asked for but no CUDA device is available; use --device cpu")
    return resolved


def _in_channels(model: nn.Module) -> int:
    declared = getattr(model, "input_nc", None)  # a generator's, or a program teacher's once it has run
    if isinstance(declared, int) and declared > 0:
        return declared
    first = next((m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))), None)
    return int(first.in_channels) if first is not None else 3


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[int]:
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def time_runner(run: Runner, runs: int, warmup: int, synchronize: Callable[[], None] | None = None) -> list[float]:
    """Milliseconds of each of ``runs`` timed calls of ``run`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        if synchronize is not None:
            synchronize()
        start = time.perf_counter_ns()
        run()
        if synchronize is not None:
            synchronize()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def prepare_runner(model: nn.Module, size: Size, backend: str, device: str, threads: int,
                   stack: contextlib.ExitStack, seed: int = 0) -> Runner:
    """The backend's runner of ``model`` (a copy, in eval mode, on ``device``) on a seeded (1, C, H, W) input."""
    chosen = get_backend(backend)
    target = _check_device(device, chosen)
    height, width = size
    checker = getattr(model, "check_input_size", None)
    if callable(checker):
        checker(height, width)
    prepared = copy.deepcopy(model).eval().to(target)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, _in_channels(model), height, width, generator=generator).to(target)
    return chosen.prepare(prepared, x, threads, stack)


def measure_latency(model: nn.Module, size: int | Sequence[int], backend: str = "eager", device: str = "cpu",
                    runs: int = 20, warmup: int = 5, threads: int | None = None) -> LatencyResult:
    """Batch-1 latency of ``model`` at ``size`` (H or (H, W)); ``threads`` sets torch's CPU threads for the
    measurement (default: the current setting, recorded in the result). The caller's model is not modified."""
    size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[-1]))
    if not (isinstance(runs, int) and runs >= 1 and isinstance(warmup, int) and warmup >= 0):
        raise LatencyError(f"latency needs runs >= 1 and warmup >= 0, got runs={runs!r}, warmup={warmup!r}")
    if threads is not None and threads < 1:
        raise LatencyError(f"threads must be at least 1, got {threads}")
    if min(size) <= 0:
        raise LatencyError(f"image size must be positive, got {size[0]}x{size[1]}")
    with _torch_threads(threads) as used, contextlib.ExitStack() as stack:
        run = prepare_runner(model, size, backend, device, used, stack)
        cuda = torch.device(device).type == "cuda"
        times = time_runner(run, runs, warmup, torch.cuda.synchronize if cuda else None)
    median, p90 = percentile_summary(times)
    return LatencyResult(backend, str(torch.device(device)), used, size, runs, median, p90, warmup)
