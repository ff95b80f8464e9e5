"""Frechet distance, KID, cached feature statistics and the torchmetrics wrappers."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from evaluators.features import FeatureExtractor
from evaluators.frechet import (FeatureStatistics, KIDResult, MetricInputError, RankDeficientCovarianceWarning,
                                RealStatistics, feature_statistics, fid_from_features, fid_from_statistics,
                                frechet_distance, kernel_inception_distance, kid_from_statistics, torchmetrics_fid,
                                torchmetrics_kid)
from foundation.errors import GanasError


def gaussian_features(n: int, mean: np.ndarray, cov: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).multivariate_normal(mean, cov, size=n)


def random_covariance(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def frechet_sqrtm_reference(mu1, sigma1, mu2, sigma2, eps=1e-6) -> float:
    """pytorch-fid's formula: scipy sqrtm of the product, an eps offset if singular, the real part."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


# --------------------------------------------------------------------------- Frechet distance

def test_frechet_distance_diagonal_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 0.25, 0.0]), np.array([9.0, 1.0, 0.25, 2.0])
    # by hand: |dmu|^2 = 1 + 0 + 4 + 0.25 = 5.25; sum (sqrt v1 - sqrt v2)^2 = 4 + 1 + 0 + 2 = 7
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(12.25, abs=1e-10)


def test_frechet_distance_matches_scipy_sqrtm_on_gaussian_features():
    d = 16
    real = gaussian_features(300, np.zeros(d), random_covariance(d, 1), seed=2)
    fake = gaussian_features(250, np.full(d, 0.3), random_covariance(d, 3), seed=4)
    mu1, sigma1 = real.mean(0), np.cov(real, rowvar=False)
    mu2, sigma2 = fake.mean(0), np.cov(fake, rowvar=False)
    reference = frechet_sqrtm_reference(mu1, sigma1, mu2, sigma2)
    assert reference > 1.0
    assert fid_from_features(real, fake) == pytest.approx(reference, rel=1e-9)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(reference, rel=1e-9)
    torch_stats = feature_statistics(torch.from_numpy(real))
    np.testing.assert_allclose(torch_stats[1], sigma1, rtol=1e-12)


def test_frechet_distance_with_a_singular_covariance():
    d = 16
    few = np.random.default_rng(11).normal(size=(6, d))  # rank 5 covariance: no Cholesky factor exists
    sigma1, sigma2 = np.cov(few, rowvar=False), random_covariance(d, 12)
    assert np.linalg.matrix_rank(sigma1) == 5
    # independent route: factor the full-rank sigma2 instead, Tr((S2^1/2 S1 S2^1/2)^1/2), with scipy's sqrtm
    root2 = scipy.linalg.sqrtm(sigma2).real
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(root2 @ sigma1 @ root2), 0, None)).sum()
    expected = np.trace(sigma1) + np.trace(sigma2) - 2 * trace_root
    # 11 zero eigenvalues carry ~1e-16 rounding on both routes, and sqrt turns that into ~1e-8 each
    assert frechet_distance(np.zeros(d), sigma1, np.zeros(d), sigma2) == pytest.approx(expected, rel=1e-6)


def test_identical_sets_give_zero():
    features = gaussian_features(200, np.ones(8), random_covariance(8, 5), seed=6)
    mu, sigma = feature_statistics(features)
    value = fid_from_features(features, features)
    assert abs(value) < 1e-6 * np.trace(sigma)
    assert fid_from_features(features, features + 2.0) == pytest.approx(8 * 4.0, rel=1e-9)  # a pure shift


def test_frechet_input_errors():
    with pytest.raises(MetricInputError, match="at least 2 real images"):
        fid_from_features(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(MetricInputError, match="d x d covariances"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(MetricInputError, match="NaN"):
        fid_from_features(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(MetricInputError, match="2-D"):
        feature_statistics(np.zeros(5))
    assert issubclass(MetricInputError, GanasError)


def test_fewer_images_than_dimensions_warns_and_stays_finite():
    rng = np.random.default_rng(7)
    with pytest.warns(RankDeficientCovarianceWarning, match=r"rank <= 5 < 16"):
        value = fid_from_features(rng.normal(size=(6, 16)), rng.normal(size=(40, 16)))
    assert np.isfinite(value) and value > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feature_statistics(rng.normal(size=(17, 16)))  # n > d: no warning


# --------------------------------------------------------------------------- KID

def mmd2_unbiased_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Binkowski et al.'s unbiased MMD^2, cubic kernel (x.y / d + 1)^3, with explicit loops."""
    m, d = x.shape
    k = lambda a, b: (a @ b / d + 1.0) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_unbiased_mmd_reference():
    rng = np.random.default_rng(8)
    real, fake = rng.normal(size=(12, 5)), rng.normal(loc=0.4, size=(12, 5))
    # one subset holding every image: MMD^2 of the full sets, whatever the permutation
    result = kernel_inception_distance(real, fake, subsets=3, subset_size=12, seed=1)
    assert result.mean == pytest.approx(mmd2_unbiased_reference(real, fake), rel=1e-10)
    assert result.std == pytest.approx(0.0, abs=1e-12)
    assert result == KIDResult(result.mean, result.std, 3, 12)
    closer = kernel_inception_distance(real, real + 0.01, subsets=1, subset_size=12)
    assert closer.mean < result.mean


def test_kid_subsets_are_seeded():
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(30, 4)), rng.normal(loc=0.2, size=(30, 4))
    first = kernel_inception_distance(real, fake, subsets=5, subset_size=10, seed=3)
    assert first == kernel_inception_distance(real, fake, subsets=5, subset_size=10, seed=3)
    assert first != kernel_inception_distance(real, fake, subsets=5, subset_size=10, seed=4)
    assert first.std > 0


def test_kid_input_errors():
    with pytest.raises(MetricInputError, match=r"at least subset_size=10 images per set, got 9 real and 20 fake"):
        kernel_inception_distance(np.zeros((9, 3)), np.zeros((20, 3)), subsets=2, subset_size=10)
    with pytest.raises(MetricInputError, match="subset_size >= 2"):
        kernel_inception_distance(np.zeros((9, 3)), np.zeros((9, 3)), subsets=2, subset_size=1)
    with pytest.raises(MetricInputError, match="differ in size"):
        kernel_inception_distance(np.zeros((9, 3)), np.zeros((9, 4)), subsets=2, subset_size=5)


# --------------------------------------------------------------------------- cached statistics

def test_statistics_round_trip_and_identity_check(tmp_path):
    rng = np.random.default_rng(10)
    real, fake = rng.normal(size=(40, 6)).astype(np.float32), rng.normal(0.5, size=(30, 6)).astype(np.float32)
    stats = RealStatistics.from_features(real, "inception-v3-fid:00000000")
    assert RealStatistics is FeatureStatistics and stats.count == 40 and stats.num_features == 6
    path = stats.save(tmp_path / "stats" / "real.npz")
    loaded = RealStatistics.load(path, identity="inception-v3-fid:00000000")
    np.testing.assert_array_equal(loaded.mu, stats.mu)
    np.testing.assert_array_equal(loaded.sigma, stats.sigma)
    np.testing.assert_array_equal(loaded.features, real)
    assert (loaded.identity, loaded.count) == (stats.identity, 40)
    fake_stats = FeatureStatistics.from_features(fake, "inception-v3-fid:00000000", keep_features=False)
    assert fid_from_statistics(loaded, fake_stats) == pytest.approx(fid_from_features(real, fake), rel=1e-12)
    with pytest.raises(MetricInputError, match="raw features"):
        kid_from_statistics(loaded, fake_stats, subsets=2, subset_size=10)
    kept = FeatureStatistics.from_features(fake, "inception-v3-fid:00000000")
    assert kid_from_statistics(loaded, kept, subsets=2, subset_size=10) == kernel_inception_distance(
        real, fake, subsets=2, subset_size=10)
    with pytest.raises(MetricInputError, match="computed with extractor inception-v3-fid:00000000, not torchscript"):
        RealStatistics.load(path, identity="torchscript:12345678:mine.pt")
    with pytest.raises(MetricInputError, match="different extractors"):
        fid_from_statistics(loaded, FeatureStatistics.from_features(fake, "torchscript:12345678:mine.pt"))
    other = tmp_path / "other.npz"
    np.savez(other, mu=np.zeros(3), sigma=np.eye(3))
    with pytest.raises(MetricInputError, match="not a ganas feature-statistics file"):
        RealStatistics.load(other)
    with pytest.raises(MetricInputError, match="cannot be read"):
        RealStatistics.load(tmp_path / "absent.npz")


# --------------------------------------------------------------------------- torchmetrics

class PooledPixels(FeatureExtractor):
    """A tiny deterministic extractor: 2x2 average-pooled pixels (12 features), float64 if asked."""

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.num_features, self.identity, self.dtype = 12, "pooled-pixels:test", dtype

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(images, 2).flatten(1).to(self.dtype)


def image_batches(n: int, seed: int, shift: float = 0.0) -> list[torch.Tensor]:
    images = (torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed)) * 1.6 - 0.8 + shift)
    return list(images.split(16))


def test_torchmetrics_fid_equals_direct_computation():
    extractor = PooledPixels()
    real, fake = image_batches(60, seed=0), image_batches(50, seed=1, shift=0.15)
    direct = fid_from_features(torch.cat([extractor.features(b) for b in real]),
                               torch.cat([extractor.features(b) for b in fake]))
    assert direct > 0.01
    assert torchmetrics_fid(extractor, real, fake) == pytest.approx(direct, rel=1e-3)


def test_torchmetrics_kid_equals_direct_computation_with_the_same_seed():
    extractor = PooledPixels(torch.float64)
    real, fake = image_batches(40, seed=2), image_batches(36, seed=3, shift=0.1)
    ours = kernel_inception_distance(torch.cat([extractor(b) for b in real]), torch.cat([extractor(b) for b in fake]),
                                     subsets=4, subset_size=20, seed=11)
    theirs = torchmetrics_kid(extractor, real, fake, subsets=4, subset_size=20, seed=11)
    assert theirs.mean == pytest.approx(ours.mean, rel=1e-9)
    assert theirs.std == pytest.approx(ours.std, rel=1e-9)


def test_torchmetrics_wrappers_refuse_too_few_images():
    extractor = PooledPixels()
    with pytest.raises(MetricInputError, match="at least 2 fake images"):
        torchmetrics_fid(extractor, image_batches(20, seed=0), [image_batches(1, seed=1)[0]])
    with pytest.raises(MetricInputError, match="at least subset_size=30"):
        torchmetrics_kid(extractor, image_batches(40, seed=0), image_batches(20, seed=1), subsets=2, subset_size=30)
