"""The final table: each final model next to its teacher, on the held-out split (the CLI and the demo print it)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..budget import format_macs
from ..store import FinalRecord, FinalStatus

HEADER = ["BUDGET", "CONFIG", "MACS", "METRIC", "BEFORE", "AFTER", "TEACHER", "AFTER VS TEACHER", "CPU LATENCY",
          "SPLIT"]


def final_rows(finals: Sequence[FinalRecord], teacher: Mapping[str, Any] | None) -> list[tuple[str, ...]]:
    """One row per final model and metric: MACs (x fewer than the teacher), the metric before and after
    fine-tuning and the teacher's, the CPU latency measured side by side (x faster than the teacher)."""
    rows = []
    for f in finals:
        budget = f"<= {format_macs(f.budget)}" if f.budget else "-"
        if f.status != FinalStatus.DONE:
            rows.append((budget, f.config, format_macs(f.macs), "-", "-", "-", "-", f.status.value,
                         (f.error or "")[:60], "-"))
            continue
        fewer = f" ({teacher['macs'] / f.macs:.1f}x fewer)" if teacher and teacher.get("macs") else ""
        faster = f"{f.latency_ms:.2f} ms ({f.teacher_latency_ms / f.latency_ms:.1f}x faster)" \
            if f.latency_ms and f.teacher_latency_ms else "-"
        for metric, after in f.after.items():
            teacher_value = f.teacher.get(metric)
            versus = f"{100 * after / teacher_value:.1f}%" if teacher_value else "-"
            rows.append((budget, f.config, format_macs(f.macs) + fewer, metric, f"{f.before[metric]:.4f}",
                         f"{after:.4f}", f"{teacher_value:.4f}" if teacher_value is not None else "-", versus,
                         faster, f.split or "-"))
    return rows
