"""bench/bench_compression.py's aggregation, table and target check, on numbers worked out by hand."""
import importlib.util
import math
import sys
from pathlib import Path

import pytest

_path = Path(__file__).resolve().parents[2] / "bench" / "compression_table.py"
_spec = importlib.util.spec_from_file_location("compression_table", _path)
ct = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))  # dataclasses look it up
_spec.loader.exec_module(ct)

M = 1_000_000


def seed(teacher_miou, teacher_ms, w35_miou, w35_ms, w50_miou, b8_miou, b12_miou):
    return [ct.Measured("teacher", ct.TEACHER, 680 * M, 1000, teacher_miou, 18.0, teacher_ms),
            ct.Measured("w35", ct.WINNER, 34 * M, 10, w35_miou, 17.0, w35_ms, "8_8_8_8_16_8_8_12"),
            ct.Measured("w50", ct.WINNER, 50 * M, 20, w50_miou, 17.5, 4.0, "12_8_16_16_8_8_8_16"),
            ct.Measured("b8", ct.BASELINE, 25_500_000, 8, b8_miou, 16.0, 2.0),
            ct.Measured("b12", ct.BASELINE, 57_375_000, 12, b12_miou, 16.5, 3.0)]


def rows(w35_seed0=0.79):
    return ct.aggregate({0: seed(0.80, 10.0, w35_seed0, 2.0, 0.72, 0.60, 0.74),
                         1: seed(0.78, 12.0, 0.77, 3.0, 0.74, 0.62, 0.76)})


def test_aggregate_takes_ratios_per_seed_against_that_seeds_teacher():
    w35 = next(r for r in rows() if r.name == "w35")
    assert w35.seeds == 2 and w35.macs == 34 * M
    assert w35.macs_ratio == pytest.approx(20.0)  # 680 / 34
    assert w35.miou == pytest.approx(0.78)
    assert w35.miou_std == pytest.approx(math.sqrt(2 * 0.01 ** 2))  # sample std of 0.79, 0.77
    assert w35.miou_vs_teacher == pytest.approx(50 * (0.79 / 0.80 + 0.77 / 0.78))  # 98.73%
    assert w35.latency_ms == pytest.approx(2.5)
    assert w35.speedup == pytest.approx(4.5)  # mean of 10 / 2 and 12 / 3, not 11 / 2.5
    assert w35.configs == ("8_8_8_8_16_8_8_12",)


def test_target_met_at_20x_within_2_percent():
    v = ct.verdict(rows())
    assert v.target_met and v.meeting == ["w35"]


def test_target_missed_says_by_how_much():
    v = ct.verdict(rows(w35_seed0=0.75))  # 50 * (0.75 / 0.80 + 0.77 / 0.78) = 96.23% of the teacher
    assert not v.target_met and v.best_at_ratio.name == "w35"
    assert "NOT met" in ct.describe(v) and "1.8 points short" in ct.describe(v)


def test_dominance_per_winner_and_per_baseline():
    v = ct.verdict(rows())
    # w35 (34M, 0.78) must beat b12 (57.4M, 0.75) only; w50 (50M, 0.73) must beat b12 and does not
    assert v.winner_checks == {"w35": [("b12", True)], "w50": [("b12", False)]}
    # b8 (25.5M) has fewer MACs than any winner, so nothing dominates it
    assert v.dominated_by == {"b8": [], "b12": ["w35"]}
    assert not v.front_dominates and not v.winners_beat_wider_baselines
    assert v.below_every_winner == {"b8": 25_500_000}
    assert "every winner has more MACs than its 25.50M (add a budget of 25500000 MACs" in ct.describe(v)


def test_table_row_and_one_seed_without_std():
    text = ct.table(rows())
    assert "| w35 (`8_8_8_8_16_8_8_12`) | 34.0M | 20.0x | 0.780 ± 0.014 | 17.00 ± 0.00 | 98.7% | 2.50 | 4.5x |" in text
    one = ct.aggregate({0: seed(0.80, 10.0, 0.79, 2.0, 0.72, 0.60, 0.74)})
    assert math.isnan(one[0].miou_std) and "| teacher | 680.0M | 1.0x | 0.800 | 18.00 | 100.0% |" in ct.table(one)


def test_a_seed_without_its_teacher_is_refused():
    with pytest.raises(ValueError, match="seed 3 has 0 teachers"):
        ct.aggregate({3: seed(0.8, 10.0, 0.79, 2.0, 0.72, 0.6, 0.74)[1:]})
