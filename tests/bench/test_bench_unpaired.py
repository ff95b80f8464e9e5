"""bench/bench_unpaired.py's table and winner per budget, on numbers worked out by hand."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # its sibling modules, as when run as a script
bench = pytest.importorskip("bench_unpaired")


def row(name, method, budget, macs, ssim, psnr, fid, own=None):
    return {"name": name, "method": method, "budget": budget, "macs": macs,
            "vs_cyclegan": {"teacher-ssim": ssim, "teacher-psnr": psnr, "fid": fid},
            "vs_own_teacher": {"teacher-ssim": own} if own is not None else {}}


def seed(gc_ssim, omgd_ssim, gc_fid, omgd_fid):
    return [row("CycleGAN teacher", "teacher", None, 30_000_000, 1.0, 86.0, 50.0),
            row("gan-compression <= 7M", "gan-compression", 7_000_000, 6_000_000, gc_ssim, 20.0, gc_fid, gc_ssim),
            row("omgd <= 7M", "omgd", 7_000_000, 6_500_000, omgd_ssim, 19.0, omgd_fid, 0.9)]


def test_the_winner_per_budget_is_the_lower_mean_fid_when_measured():
    text = bench.report({0: seed(0.8, 0.6, 70.0, 60.0), 1: seed(0.7, 0.5, 64.0, 68.0)}, fid=True)
    assert "<= 7M: omgd wins (lower FID; gan-compression 67, omgd 64)" in text
    assert "| omgd <= 7M | 6.50M | 0.55 ± 0.0707 | 19 ± 0 | 0.9 ± 0 | 64 ± 5.66 |" in text


def test_without_fid_the_winner_is_by_ssim_to_the_cyclegan_teacher_and_says_whom_it_favours():
    text = bench.report({0: seed(0.8, 0.6, 0.0, 0.0)}, fid=False)
    assert "<= 7M: gan-compression wins (higher SSIM to the CycleGAN teacher" in text
    assert "favours GAN Compression by construction" in text and "FID |" not in text
    assert "| CycleGAN teacher | 30.00M | 1 | 86 | - |" in text
