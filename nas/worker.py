"""What a search worker does: load the supernet and the metric networks once, then score many configs.

``CandidateEvaluator`` is a plain class; the Ray executor runs it as a long-lived actor (so
models, reference statistics and caches stay loaded between candidates). The supernet arrives
as checkpoint bytes through Ray's object store, never through a shared path, and its SHA-256
is checked against the registry before it is loaded.
"""
from __future__ import annotations

import io
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Mapping

from foundation.hashing import bytes_sha256
from supernet.errors import CheckpointError


@dataclass(frozen=True)
class Task:
    candidate_id: int
    config: str


@dataclass(frozen=True)
class Outcome:
    """A finished (or failed) evaluation as the orchestrator records it."""

    worker: str
    candidate_id: int
    ok: bool
    metrics: Mapping[str, float] = field(default_factory=dict)
    evaluator: str = ""
    seconds: float = 0.0
    error: str = ""
    sample_png: bytes | None = None
    worker_lost: bool = False  # the worker process died or was killed: restart it


def load_supernet(checkpoint: bytes, expected_sha256: str):
    """The supernet from checkpoint bytes, refusing bytes whose hash is not the registered one."""
    from supernet.checkpoint import generator_from_record
    import torch

    digest = bytes_sha256(checkpoint)
    if digest != expected_sha256:
        raise CheckpointError(f"supernet checkpoint hash {digest[:12]}... does not match the registered "
                              f"{expected_sha256[:12]}...: the file changed after registration (re-register it)")
    record = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)
    supernet = generator_from_record(record, "registered supernet")
    return supernet.eval()


class CandidateEvaluator:
    """One worker: the supernet, the evaluator (metric networks + cached real statistics), many configs."""

    def __init__(self, name: str, checkpoint: bytes, expected_sha256: str, evaluation: Mapping[str, Any],
                 threads: int | None = None):
        import torch

        from .search_setup import EvaluationSpec

        if threads:
            torch.set_num_threads(threads)
        self.name = name
        self.spec = EvaluationSpec.from_dict(evaluation)
        self.supernet = load_supernet(checkpoint, expected_sha256)
        self.evaluator = build_evaluator(self.spec)

    def ping(self) -> str:
        return self.name

    def evaluate(self, task: Task) -> Outcome:
        from supernet.space import parse_config_numbers

        start = time.perf_counter()
        try:
            config = parse_config_numbers(task.config)
            result = self.evaluator.evaluate(self.supernet, config)
            png = sample_png(self.evaluator, self.supernet, config, self.spec.samples) if self.spec.samples else None
            return Outcome(self.name, task.candidate_id, True, dict(result.metrics), evaluator_identity(result),
                           time.perf_counter() - start, sample_png=png)
        except Exception as exc:  # reported to the orchestrator, which retries or fails the candidate
            text = f"{type(exc).__name__}: {exc}"
            tail = traceback.format_exc(limit=3).strip().splitlines()[-3:]
            return Outcome(self.name, task.candidate_id, False, seconds=time.perf_counter() - start,
                           error=text + " | " + " / ".join(tail))


def build_evaluator(spec):
    """The evaluators' entry point for the spec's images, metrics and metric networks."""
    from evaluators.evaluate import EvaluationSettings, Evaluator
    from imagedata import Preprocess, create_dataset

    dataset = create_dataset(spec.data_root, spec.layout, spec.split, preprocess=Preprocess.for_size(spec.size),
                             direction=spec.direction, train=False)
    settings = EvaluationSettings(batch_size=spec.batch_size, extractor=spec.extractor or "inception",
                                  inception_weights=spec.inception_weights, segmenter=spec.segmenter,
                                  cache_dir=spec.cache_dir)
    return Evaluator(dataset, spec.metrics, settings)


def evaluator_identity(result) -> str:
    identities = dict(getattr(result, "identities", {}) or {})
    return ";".join(f"{k}={v}" for k, v in sorted(identities.items())) or "ganas"


def sample_png(evaluator, supernet, config, n: int) -> bytes:
    from PIL import Image

    grid = evaluator.sample_grid(supernet, config, n)
    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, format="PNG")
    return buffer.getvalue()
