"""One finalize job, as a worker runs it: fine-tune a chosen config, measure it against the teacher, export it.

Before and after fine-tuning, the subnet and the teacher are evaluated with the same evaluator
on the held-out split that neither training (train1) nor selection (train2) used; both are
timed side by side on the worker's CPU; the fine-tuned subnet is exported to pt2 and ONNX and
each export is checked against PyTorch. Everything comes back as bytes (checkpoint, exports), so
workers need no filesystem shared with the driver; the fine-tune's own checkpoints stay in
``work_dir`` so that a killed job resumes from its last one when it runs on the same machine.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

EXPORT_FORMATS = ("pt2", "onnx")
DEFAULT_RECIPE = "gan-compression"  # finals recorded before recipes were named used it
EXPORT_TOLERANCE = 1e-3  # max |export - PyTorch| on [-1, 1] images


@dataclass(frozen=True)
class FinalizeTask:
    """Fine-tune ``config`` for ``steps`` steps and measure it; ``finetune`` holds the recipe's name (``recipe``,
    one of ``distill.jobs.FINETUNE_RECIPES``; absent: GAN Compression's) and its settings."""

    final_id: int
    config: str
    steps: int
    seed: int
    work_dir: str
    finetune: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 1
    latency_runs: int = 10
    method = "finalize"  # the worker method that runs it

    def lost(self, worker: str, error: str) -> "FinalOutcome":
        return FinalOutcome(worker, self.final_id, False, error=error, worker_lost=True)


@dataclass(frozen=True)
class FinalOutcome:
    worker: str
    final_id: int
    ok: bool
    before: Mapping[str, float] = field(default_factory=dict)  # subnet on the held-out split, before fine-tuning
    after: Mapping[str, float] = field(default_factory=dict)
    teacher: Mapping[str, float] = field(default_factory=dict)  # the teacher, same images, same evaluator
    evaluator: str = ""
    latency_ms: float | None = None  # eager PyTorch, batch 1, median, the worker's threads
    teacher_latency_ms: float | None = None
    checkpoint: bytes | None = None  # the fine-tuned subnet (ganas checkpoint)
    exports: Mapping[str, bytes] = field(default_factory=dict)  # format -> file bytes, each verified
    export_errors: Mapping[str, float] = field(default_factory=dict)  # format -> max |export - PyTorch|
    seconds: float = 0.0
    error: str = ""
    worker_lost: bool = False

    @property
    def candidate_id(self) -> int:  # what executors report lost work by
        return self.final_id


def run_finalize(worker, task: FinalizeTask) -> FinalOutcome:
    """The job itself, on a worker that holds the supernet, the teacher and a held-out evaluator."""
    from distill.jobs import FINETUNE_RECIPES, DataSpec, finetune_subnet
    from distill.loop import LoopSettings
    from evaluators.latency import measure_latency
    from supernet.checkpoint import generator_bytes
    from supernet.extract import extract_subnet
    from supernet.space import parse_config_numbers

    start = time.perf_counter()
    config = parse_config_numbers(task.config)
    evaluator, teacher = worker.held_out_evaluator(), worker.teacher
    teacher_result = worker.teacher_on_held_out()
    before = evaluator.evaluate(extract_subnet(worker.supernet, config))
    spec = worker.spec
    data = DataSpec(Path(spec.data_root), spec.layout, spec.direction, spec.size)
    values = dict(task.finetune)
    recipe = values.pop("recipe", DEFAULT_RECIPE)
    settings = FINETUNE_RECIPES.get(recipe).settings(values)
    loop = LoopSettings(task.steps, task.batch_size, task.seed, max(1, min(100, task.steps // 4)))
    subnet, used = finetune_subnet(data, worker.supernet, config, teacher, settings, loop, Path(task.work_dir),
                                   outside=True, resume=True, progress=False, recipe=recipe,
                                   teacher_meta=worker.teacher_meta)
    if subnet is None:
        raise RuntimeError(f"fine-tuning {task.config} stopped before step {task.steps}")
    subnet.eval()
    after = evaluator.evaluate(subnet)
    size = (spec.size, spec.size)
    latency = measure_latency(subnet, size, runs=task.latency_runs, warmup=2)
    teacher_latency = measure_latency(teacher, size, runs=task.latency_runs, warmup=2)
    checkpoint = generator_bytes(subnet, kind="subnet", method="finalize", config=task.config, steps=task.steps,
                                 recipe=recipe, losses=_plain(used))
    exports, errors = _exports(subnet, spec.size)
    return FinalOutcome(worker.name, task.final_id, True, dict(before.metrics), dict(after.metrics),
                        dict(teacher_result.metrics), worker.identity(after), latency.median_ms,
                        teacher_latency.median_ms, checkpoint, exports, errors, time.perf_counter() - start)


def _plain(settings) -> dict:
    import json
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(settings)))


def _exports(subnet, size: int) -> tuple[dict[str, bytes], dict[str, float]]:
    from supernet.export import export_generator, verify_export

    exports, errors = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for fmt in EXPORT_FORMATS:
            path = export_generator(subnet, Path(folder) / f"subnet.{fmt}", fmt, input_size=size)
            error = verify_export(subnet, path, fmt, input_size=size).max_abs_diff
            if error > EXPORT_TOLERANCE:
                raise RuntimeError(f"the {fmt} export differs from PyTorch by {error:.2g} (> {EXPORT_TOLERANCE})")
            exports[fmt], errors[fmt] = path.read_bytes(), error
    return exports, errors
