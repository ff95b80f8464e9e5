"""What a search worker does: load the supernet, its teacher and the metric networks once, then run many tasks.

``SearchWorker`` is a plain class; the Ray executor runs it as a long-lived actor (so models,
reference statistics and caches stay loaded between tasks). Its tasks: score a candidate config
(:class:`Task`), score the teacher with the same evaluator (:class:`TeacherTask`), and finalize a
chosen config (:class:`~nas.finalize.job.FinalizeTask`: fine-tune, measure on the held-out split,
export). The supernet and the teacher arrive as bytes through Ray's object store, never through a
shared path, and each is checked against the SHA-256 recorded in the store before it is loaded.
"""
from __future__ import annotations

import io
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from foundation.errors import describe_error
from foundation.hashing import bytes_sha256
from supernet.errors import CheckpointError

TEACHER_TASK_ID = -1  # the id a teacher evaluation's outcome carries (it is no candidate)


@dataclass(frozen=True)
class Task:
    """Score one candidate config on the search split."""

    candidate_id: int
    config: str
    method = "evaluate"

    def lost(self, worker: str, error: str) -> "Outcome":
        return Outcome(worker, self.candidate_id, False, error=error, worker_lost=True)


@dataclass(frozen=True)
class TeacherTask:
    """Score the teacher on the search split with the candidates' evaluator."""

    method = "evaluate_teacher"
    candidate_id = TEACHER_TASK_ID

    def lost(self, worker: str, error: str) -> "Outcome":
        return Outcome(worker, TEACHER_TASK_ID, False, error=error, worker_lost=True)


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
    worker_lost: bool = False  # the worker process died or was killed: restart it, the attempt is not charged


@dataclass(frozen=True)
class WorkerPayload:
    """What every worker is built from: the supernet's and the teacher's bytes with their recorded hashes."""

    checkpoint: bytes
    sha256: str
    evaluation: Mapping[str, Any]
    threads: int | None = None
    teacher: bytes | None = None
    teacher_info: Mapping[str, Any] | None = None  # nas.teacher.TeacherInfo as a dict


def load_supernet(checkpoint: bytes, expected_sha256: str):
    """The supernet from checkpoint bytes, refusing bytes whose hash is not the registered one."""
    from supernet.checkpoint import generator_from_bytes

    digest = bytes_sha256(checkpoint)
    if digest != expected_sha256:
        raise CheckpointError(f"supernet checkpoint hash {digest[:12]}... does not match the registered "
                              f"{expected_sha256[:12]}...: the file changed after registration (re-register it)")
    return generator_from_bytes(checkpoint, "registered supernet").eval()


class SearchWorker:
    """One worker: the supernet, its teacher, the evaluator (metric networks + cached real statistics)."""

    def __init__(self, name: str, payload: WorkerPayload):
        import torch

        from .search_setup import EvaluationSpec
        from .teacher import TeacherInfo

        if payload.threads:
            torch.set_num_threads(payload.threads)
        self.name = name
        self.spec = EvaluationSpec.from_dict(payload.evaluation)
        self.supernet = load_supernet(payload.checkpoint, payload.sha256)
        info = TeacherInfo.from_dict(payload.teacher_info)
        loaded = info.open(payload.teacher) if payload.teacher is not None else None
        self.teacher = loaded.generator if loaded is not None else None
        self.teacher_meta = dict(loaded.meta) if loaded is not None else {}  # online fine-tuning starts D from it
        self._teacher_identity = (info.path, info.sha256) if self.teacher is not None else None
        self.evaluator = build_evaluator(self.spec, self.teacher, self._teacher_identity)
        self._held_out = None
        self._teacher_held_out = None

    def ping(self) -> str:
        return self.name

    def evaluate(self, task: Task) -> Outcome:
        from supernet.space import parse_config_numbers

        def score() -> Outcome:
            config = parse_config_numbers(task.config)
            result = self.evaluator.evaluate(self.supernet, config)
            png = self._sample_png(config) if self.spec.samples else None
            return Outcome(self.name, task.candidate_id, True, dict(result.metrics), self.identity(result),
                           sample_png=png)

        return self._guarded(task, score)

    def evaluate_teacher(self, task: TeacherTask) -> Outcome:
        def score() -> Outcome:
            if self.teacher is None:
                raise CheckpointError("this search's supernet records no teacher")
            result = self.evaluator.evaluate(self.teacher)
            return Outcome(self.name, TEACHER_TASK_ID, True, dict(result.metrics), self.identity(result))

        return self._guarded(task, score)

    def finalize(self, task):
        from .finalize.job import run_finalize

        return self._guarded(task, lambda: run_finalize(self, task))

    # -- what finalize jobs share -------------------------------------------------------------------
    def held_out_evaluator(self):
        """The evaluator on the held-out split (val, else test), built on first use."""
        if self._held_out is None:
            from imagedata import detect_layout, get_layout

            layout = get_layout(self.spec.layout or detect_layout(self.spec.data_root).layout)
            split = held_out_split(layout.available_splits(Path(self.spec.data_root)))
            self._held_out = build_evaluator(replace(self.spec, split=split), self.teacher, self._teacher_identity)
        return self._held_out

    def teacher_on_held_out(self):
        if self.teacher is None:
            raise CheckpointError("this search's supernet records no teacher to fine-tune from; register it with "
                                  "--teacher FILE")
        if self._teacher_held_out is None:
            self._teacher_held_out = self.held_out_evaluator().evaluate(self.teacher)
        return self._teacher_held_out

    @staticmethod
    def identity(result) -> str:
        identities = dict(getattr(result, "identities", {}) or {})
        return ";".join(f"{k}={v}" for k, v in sorted(identities.items())) or "ganas"

    # -- helpers ------------------------------------------------------------------------------------
    def _guarded(self, task, run):
        """Run a task; any failure becomes a failed outcome the orchestrator retries or records."""
        start = time.perf_counter()
        try:
            outcome = run()
            return replace(outcome, seconds=time.perf_counter() - start)
        except Exception as exc:
            text = describe_error(exc)
            tail = traceback.format_exc(limit=3).strip().splitlines()[-3:]
            lost = task.lost(self.name, text + " | " + " / ".join(tail))
            return replace(lost, worker_lost=False, seconds=time.perf_counter() - start)

    def _sample_png(self, config) -> bytes:
        from PIL import Image

        grid = self.evaluator.sample_grid(self.supernet, config, self.spec.samples, reference=self.teacher)
        buffer = io.BytesIO()
        Image.fromarray(grid).save(buffer, format="PNG")
        return buffer.getvalue()


def held_out_split(available) -> str:
    """The split final figures are reported on: val, else test (never train1 or train2)."""
    for split in ("val", "test"):
        if split in available:
            return split
    raise CheckpointError("the dataset has no val or test split to report final figures on; add ROOT/val "
                          "(see docs/datasets.md)")


def build_evaluator(spec, teacher=None, teacher_file: tuple[str, str] | None = None):
    """The evaluators' entry point for the spec's images, metrics and metric networks; ``teacher`` (with its
    recorded path and SHA-256) is what the teacher-fidelity metrics compare with."""
    from evaluators.evaluate import EvaluationSettings, Evaluator, teacher_identity
    from imagedata import Preprocess, create_dataset

    dataset = create_dataset(spec.data_root, spec.layout, spec.split, preprocess=Preprocess.for_size(spec.size),
                             direction=spec.direction, train=False)
    settings = EvaluationSettings(batch_size=spec.batch_size, extractor=spec.extractor or "inception",
                                  inception_weights=spec.inception_weights, segmenter=spec.segmenter,
                                  cache_dir=spec.cache_dir, options=spec.options(), teacher=teacher,
                                  teacher_identity=teacher_identity(*teacher_file) if teacher_file else None)
    return Evaluator(dataset, spec.metrics, settings)
