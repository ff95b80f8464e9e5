"""Aggregation, markdown table and target check of bench/bench_compression.py, on plain numbers.

Each seed gives one :class:`Measured` per model (the teacher, the finalized winner per budget, the
fixed-width baselines); models are matched across seeds by name. Ratios to the teacher (MACs, mIoU,
latency) are taken per seed, against that seed's teacher, then averaged.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Mapping, Sequence

TEACHER, WINNER, BASELINE = "teacher", "winner", "baseline"
TARGET_MACS_RATIO = 20.0  # at least 20x fewer MACs than the teacher ...
TARGET_MIOU_DROP = 2.0  # ... at no more than 2% (relative) mIoU below it


@dataclass(frozen=True)
class Measured:
    """One model of one seed: closed-form MACs and parameters, mIoU and PSNR on val, CPU latency (ms)."""

    name: str
    kind: str  # teacher | winner | baseline
    macs: int
    params: int
    miou: float
    psnr: float
    latency_ms: float
    config: str = ""


@dataclass(frozen=True)
class Row:
    """One model over the seeds: means, standard deviations (nan with one seed) and per-seed ratios' means."""

    name: str
    kind: str
    seeds: int
    macs: float
    macs_ratio: float  # teacher MACs / model MACs
    miou: float
    miou_std: float
    psnr: float
    psnr_std: float
    miou_vs_teacher: float  # model mIoU / teacher mIoU, in %
    latency_ms: float
    speedup: float  # teacher latency / model latency
    configs: tuple[str, ...]


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else math.nan


def aggregate(per_seed: Mapping[int, Sequence[Measured]]) -> list[Row]:
    """One row per model name, in the order of the first seed; every seed must have a teacher."""
    teachers = {}
    for seed, models in per_seed.items():
        found = [m for m in models if m.kind == TEACHER]
        if len(found) != 1:
            raise ValueError(f"seed {seed} has {len(found)} teachers; it needs exactly one")
        teachers[seed] = found[0]
    names = list(dict.fromkeys(m.name for models in per_seed.values() for m in models))
    rows = []
    for name in names:
        pairs = [(teachers[seed], m) for seed, models in per_seed.items() for m in models if m.name == name]
        ms = [m for _, m in pairs]
        rows.append(Row(
            name, ms[0].kind, len(ms), statistics.fmean(m.macs for m in ms),
            statistics.fmean(t.macs / m.macs for t, m in pairs),
            statistics.fmean(m.miou for m in ms), _std([m.miou for m in ms]),
            statistics.fmean(m.psnr for m in ms), _std([m.psnr for m in ms]),
            100 * statistics.fmean(m.miou / t.miou for t, m in pairs),
            statistics.fmean(m.latency_ms for m in ms), statistics.fmean(t.latency_ms / m.latency_ms for t, m in pairs),
            tuple(dict.fromkeys(m.config for m in ms if m.config))))
    return rows


@dataclass(frozen=True)
class Verdict:
    """Whether the issue's target holds, and by how much it is missed otherwise."""

    target_met: bool
    meeting: list[str]  # winners with >= 20x fewer MACs and <= 2% mIoU below the teacher
    best_at_ratio: Row | None  # the best-mIoU winner with >= 20x fewer MACs
    widest_within_drop: Row | None  # the winner with the most MACs saved within 2% of the teacher's mIoU
    # winner -> [(baseline with >= its MACs, whether the winner's mIoU is higher)]
    winner_checks: dict[str, list[tuple[str, bool]]]
    # baseline -> the winners that dominate it (<= its MACs and higher mIoU)
    dominated_by: dict[str, list[str]]
    # baselines with fewer MACs than every winner (no budget that low): they cannot be dominated
    below_every_winner: dict[str, float]  # name -> its MACs

    @property
    def front_dominates(self) -> bool:
        """Every baseline is dominated by some winner."""
        return all(self.dominated_by.values())

    @property
    def winners_beat_wider_baselines(self) -> bool:
        return all(ok for checks in self.winner_checks.values() for _, ok in checks)


def verdict(rows: Sequence[Row]) -> Verdict:
    winners = [r for r in rows if r.kind == WINNER]
    baselines = [r for r in rows if r.kind == BASELINE]
    within = [r for r in winners if r.miou_vs_teacher >= 100 - TARGET_MIOU_DROP]
    meeting = [r.name for r in within if r.macs_ratio >= TARGET_MACS_RATIO]
    at_ratio = [r for r in winners if r.macs_ratio >= TARGET_MACS_RATIO]
    checks = {w.name: [(b.name, w.miou > b.miou) for b in baselines if b.macs >= w.macs] for w in winners}
    dominated = {b.name: [w.name for w in winners if w.macs <= b.macs and w.miou > b.miou] for b in baselines}
    below = {b.name: b.macs for b in baselines if all(w.macs > b.macs for w in winners)}
    return Verdict(bool(meeting), meeting, max(at_ratio, key=lambda r: r.miou, default=None),
                   max(within, key=lambda r: r.macs_ratio, default=None), checks, dominated, below)


def _pm(mean: float, std: float, digits: int) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if not math.isnan(std) else f"{mean:.{digits}f}"


def table(rows: Sequence[Row]) -> str:
    header = ["model", "MACs", "x fewer MACs", "mIoU (val)", "PSNR dB (val)", "mIoU vs teacher", "latency ms",
              "x faster"]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for r in rows:
        name = r.name + (f" (`{'`, `'.join(r.configs)}`)" if r.kind == WINNER and r.configs else "")
        lines.append("| " + " | ".join([
            name, f"{r.macs / 1e6:.1f}M", f"{r.macs_ratio:.1f}x", _pm(r.miou, r.miou_std, 3), _pm(r.psnr, r.psnr_std, 2),
            f"{r.miou_vs_teacher:.1f}%", f"{r.latency_ms:.2f}", f"{r.speedup:.1f}x"]) + " |")
    return "\n".join(lines)


def describe(v: Verdict) -> str:
    """The verdict in sentences, for the report under the table."""
    out = []
    goal = f">= {TARGET_MACS_RATIO:.0f}x fewer MACs at <= {TARGET_MIOU_DROP:.0f}% mIoU below the teacher"
    if v.target_met:
        out.append(f"Target ({goal}): met by {', '.join(v.meeting)}.")
    else:
        missed = [f"Target ({goal}): NOT met."]
        if v.best_at_ratio is not None:
            b = v.best_at_ratio
            missed.append(f"At >= {TARGET_MACS_RATIO:.0f}x the best winner is {b.name} ({b.macs_ratio:.1f}x) at "
                          f"{b.miou_vs_teacher:.1f}% of the teacher's mIoU: "
                          f"{100 - TARGET_MIOU_DROP - b.miou_vs_teacher:.1f} points short.")
        else:
            missed.append(f"No winner reaches {TARGET_MACS_RATIO:.0f}x fewer MACs.")
        if v.widest_within_drop is not None:
            w = v.widest_within_drop
            missed.append(f"Within {TARGET_MIOU_DROP:.0f}% of the teacher the most compressed winner is {w.name} "
                          f"at {w.macs_ratio:.1f}x fewer MACs.")
        else:
            missed.append(f"No winner is within {TARGET_MIOU_DROP:.0f}% of the teacher's mIoU.")
        out.append(" ".join(missed))
    for winner, checks in v.winner_checks.items():
        if not checks:
            out.append(f"- {winner}: no baseline has as many MACs or more.")
        else:
            out.append(f"- {winner}: " + "; ".join(f"{'beats' if ok else 'does NOT beat'} {b}" for b, ok in checks)
                       + " (baselines with >= its MACs).")
    for baseline, by in v.dominated_by.items():
        if baseline in v.below_every_winner:
            macs = v.below_every_winner[baseline]
            out.append(f"- {baseline}: dominated by NO winner: every winner has more MACs than its "
                       f"{macs / 1e6:.2f}M (add a budget of {macs:.0f} MACs: --budgets {macs:.0f} ...).")
        else:
            out.append(f"- {baseline}: " + (f"dominated by {', '.join(by)}" if by else "dominated by NO winner") + ".")
    out.append(f"Front dominates every fixed-width baseline: {'yes' if v.front_dominates else 'no'}; every winner "
               f"beats every baseline of equal-or-more MACs: {'yes' if v.winners_beat_wider_baselines else 'no'}.")
    return "\n".join(out)
