"""FID and KID from features: the math, cached statistics, and thin torchmetrics wrappers.

Frechet distance: ``|mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2))``. The trace of the
matrix square root is computed in a *symmetric eigen* form instead of pytorch-fid's
``scipy.linalg.sqrtm`` of the non-symmetric product: for any factor ``S1 = F F^T``, ``S1 S2`` has
the same eigenvalues as the symmetric PSD matrix ``F^T S2 F``, so
``Tr((S1 S2)^(1/2)) = sum(sqrt(eigvalsh(F^T S2 F)))``. ``F`` is the Cholesky factor, or
``V sqrt(W)`` from ``eigh`` when ``S1`` is singular (fewer images than dimensions). No epsilon
offset, no imaginary parts to discard; it agrees with the sqrtm formula to ~1e-14 relative and
is faster (see the report's figures). Eigenvalues below zero are rounding noise and are clipped.

KID: the unbiased MMD^2 estimator with the polynomial kernel ``(gamma x.y + coef)^degree``
(degree 3, gamma 1/d, coef 1), averaged over random subsets, as torch-fidelity and torchmetrics.
Subsets are drawn as torchmetrics draws them (``randperm`` of the real, then of the fake set) but
from a generator seeded by ``seed``, so scores are reproducible.
"""
from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
import torch
from torch import Tensor

from foundation.errors import GanasError
from foundation.files import atomic_path

if TYPE_CHECKING:
    from .features import FeatureExtractor

STATISTICS_FORMAT = "ganas.feature-statistics/1"
ArrayLike = np.ndarray | Tensor


class MetricInputError(GanasError):
    """Features or statistics a metric cannot use: too few images, mismatched sizes or extractors."""


class RankDeficientCovarianceWarning(UserWarning):
    """Fewer images than feature dimensions + 1: the covariance is singular and FID is biased upwards."""


def _features(values: ArrayLike, name: str) -> np.ndarray:
    array = values.detach().cpu().double().numpy() if isinstance(values, Tensor) else np.asarray(values, np.float64)
    if array.ndim != 2 or array.shape[1] == 0:
        raise MetricInputError(f"{name} must be a 2-D (images, features) array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise MetricInputError(f"{name} contain NaN or infinite values")
    return array


def check_fid_count(count: int, dims: int, name: str) -> None:
    """FID needs two images per set for a covariance; below ``dims + 1`` the estimate is rank-deficient."""
    if count < 2:
        raise MetricInputError(f"FID needs at least 2 {name} images to estimate a covariance, got {count}")
    if count <= dims:
        warnings.warn(
            f"only {count} {name} images for {dims}-d features: the covariance has rank <= {count - 1} < {dims}, so "
            f"FID is biased upwards and noisy; use more than {dims} images (published FIDs use thousands)",
            RankDeficientCovarianceWarning, stacklevel=3)


def feature_statistics(features: ArrayLike, name: str = "feature") -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased (n - 1) covariance, float64, as pytorch-fid and torchmetrics compute them."""
    array = _features(features, f"{name} features")
    check_fid_count(array.shape[0], array.shape[1], name)
    return array.mean(axis=0), np.cov(array, rowvar=False)


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``Tr((sigma1 sigma2)^(1/2))`` for symmetric PSD matrices, by the eigen form in the module docstring."""
    symmetric = (sigma1 + sigma1.T) / 2
    try:
        factor = np.linalg.cholesky(symmetric)
    except np.linalg.LinAlgError:  # singular: the PSD square-root factor works as well
        values, vectors = np.linalg.eigh(symmetric)
        factor = vectors * np.sqrt(np.clip(values, 0, None))
    middle = factor.T @ sigma2 @ factor
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Frechet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = (np.atleast_1d(np.asarray(m, np.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(s, np.float64)) for s in (sigma1, sigma2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise MetricInputError(f"Frechet distance needs means of one length d and d x d covariances, got "
                               f"{mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    if not all(np.isfinite(a).all() for a in (mu1, mu2, sigma1, sigma2)):
        raise MetricInputError("Frechet distance inputs contain NaN or infinite values")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2))


def fid_from_features(real: ArrayLike, fake: ArrayLike) -> float:
    """FID between two feature sets (rows are images)."""
    mu1, sigma1 = feature_statistics(real, "real")
    mu2, sigma2 = feature_statistics(fake, "fake")
    if mu1.shape != mu2.shape:
        raise MetricInputError(f"real and fake features differ in size: {mu1.shape[0]} vs {mu2.shape[0]}")
    return frechet_distance(mu1, sigma1, mu2, sigma2)


# ----------------------------------------------------------------------------- KID

@dataclass(frozen=True)
class KIDResult:
    """KID averaged over ``subsets`` random subsets of ``subset_size`` images; ``std`` over subsets."""

    mean: float
    std: float
    subsets: int
    subset_size: int


def polynomial_kernel(x: Tensor, y: Tensor, degree: int = 3, gamma: float | None = None,
                      coef: float = 1.0) -> Tensor:
    """``(gamma x.y + coef)^degree`` for all row pairs; gamma defaults to 1 / feature size."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef) ** degree


def mmd2_unbiased(k_xx: Tensor, k_xy: Tensor, k_yy: Tensor) -> float:
    """Unbiased MMD^2 of equal-size samples: within-set means skip the diagonal, the cross term keeps it."""
    m = k_xx.shape[0]
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / m**2)


def check_kid_settings(subsets: int, subset_size: int) -> None:
    if not (isinstance(subsets, int) and isinstance(subset_size, int)) or subsets < 1 or subset_size < 2:
        raise MetricInputError(f"KID needs integers subsets >= 1 and subset_size >= 2, got {subsets!r} and "
                               f"{subset_size!r}")


def check_kid_counts(n_real: int, n_fake: int, subsets: int, subset_size: int) -> None:
    check_kid_settings(subsets, subset_size)
    if n_real < subset_size or n_fake < subset_size:
        raise MetricInputError(f"KID needs at least subset_size={subset_size} images per set, got {n_real} real "
                               f"and {n_fake} fake; lower the subset size or use more images")


def kernel_inception_distance(real: ArrayLike, fake: ArrayLike, subsets: int = 100, subset_size: int = 1000,
                              degree: int = 3, gamma: float | None = None, coef: float = 1.0,
                              seed: int = 0) -> KIDResult:
    """KID between two feature sets, computed in float64; the same ``seed`` gives the same subsets."""
    x = torch.from_numpy(_features(real, "real features"))
    y = torch.from_numpy(_features(fake, "fake features"))
    if x.shape[1] != y.shape[1]:
        raise MetricInputError(f"real and fake features differ in size: {x.shape[1]} vs {y.shape[1]}")
    check_kid_counts(x.shape[0], y.shape[0], subsets, subset_size)
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(subsets):
        xs = x[torch.randperm(x.shape[0], generator=generator)[:subset_size]]
        ys = y[torch.randperm(y.shape[0], generator=generator)[:subset_size]]
        scores.append(mmd2_unbiased(polynomial_kernel(xs, xs, degree, gamma, coef),
                                    polynomial_kernel(xs, ys, degree, gamma, coef),
                                    polynomial_kernel(ys, ys, degree, gamma, coef)))
    return KIDResult(float(np.mean(scores)), float(np.std(scores)), subsets, subset_size)


# ----------------------------------------------------------------------------- cached statistics

@dataclass(frozen=True, eq=False)
class FeatureStatistics:
    """What FID/KID need of one image set, tagged with the extractor identity that produced it.

    Real-image statistics are computed once and cached on disk (``.npz``); ``features`` (float32)
    are kept for KID and may be dropped to save space (FID needs only ``mu`` and ``sigma``).
    """

    identity: str
    count: int
    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray | None = None

    @classmethod
    def from_features(cls, features: ArrayLike, identity: str, keep_features: bool = True) -> "FeatureStatistics":
        mu, sigma = feature_statistics(features)
        raw = features.detach().cpu().float().numpy() if isinstance(features, Tensor) else np.asarray(features)
        kept = raw.astype(np.float32) if keep_features else None
        return cls(identity, int(raw.shape[0]), mu, sigma, kept)

    @property
    def num_features(self) -> int:
        return int(self.mu.shape[0])

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temp file + rename); plain arrays only, so loading needs no pickle."""
        path = Path(path)
        arrays = {"format": np.array(STATISTICS_FORMAT), "identity": np.array(self.identity),
                  "count": np.array(self.count), "mu": self.mu, "sigma": self.sigma}
        if self.features is not None:
            arrays["features"] = self.features
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, identity: str | None = None) -> "FeatureStatistics":
        """Read a file written by :meth:`save`; with ``identity``, refuse statistics of another extractor."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                if "format" not in data.files or str(data["format"]) != STATISTICS_FORMAT:
                    raise MetricInputError(f"{path} is not a ganas feature-statistics file ({STATISTICS_FORMAT})")
                stats = cls(str(data["identity"]), int(data["count"]), data["mu"], data["sigma"],
                            data["features"] if "features" in data.files else None)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise MetricInputError(f"statistics file {path} cannot be read ({type(exc).__name__}: {exc})") from None
        if identity is not None and stats.identity != identity:
            raise MetricInputError(f"statistics in {path} were computed with extractor {stats.identity}, not "
                                   f"{identity}; recompute them with the current extractor")
        return stats


RealStatistics = FeatureStatistics  # the name the real-statistics cache uses


def _same_extractor(real: FeatureStatistics, fake: FeatureStatistics) -> None:
    if real.identity != fake.identity:
        raise MetricInputError(f"statistics from different extractors cannot be compared: {real.identity} vs "
                               f"{fake.identity}")


def fid_from_statistics(real: FeatureStatistics, fake: FeatureStatistics) -> float:
    """FID between two cached statistics of the same extractor."""
    _same_extractor(real, fake)
    return frechet_distance(real.mu, real.sigma, fake.mu, fake.sigma)


def kid_from_statistics(real: FeatureStatistics, fake: FeatureStatistics, subsets: int = 100,
                        subset_size: int = 1000, seed: int = 0) -> KIDResult:
    """KID between two statistics that kept their features."""
    _same_extractor(real, fake)
    if real.features is None or fake.features is None:
        raise MetricInputError("KID needs the raw features; these statistics were saved without them "
                               "(keep_features=False)")
    return kernel_inception_distance(real.features, fake.features, subsets, subset_size, seed=seed)


# ----------------------------------------------------------------------------- torchmetrics

def _feed(metric: object, extractor: "FeatureExtractor", batches: Iterable[Tensor], real: bool) -> int:
    from .features import check_images

    device = next((p.device for p in extractor.parameters()), torch.device("cpu"))
    count = 0
    with torch.no_grad():
        for batch in batches:
            check_images(batch, extractor.channels)
            metric.update(batch.to(device), real=real)
            count += batch.shape[0]
    return count


def torchmetrics_fid(extractor: "FeatureExtractor", real: Iterable[Tensor], fake: Iterable[Tensor]) -> float:
    """FID by torchmetrics' ``FrechetInceptionDistance`` with ``extractor`` as its feature network."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=extractor, reset_real_features=False)
    for name, batches, is_real in (("real", real, True), ("fake", fake, False)):
        check_fid_count(_feed(metric, extractor, batches, is_real), extractor.num_features, name)
    return float(metric.compute())


def torchmetrics_kid(extractor: "FeatureExtractor", real: Iterable[Tensor], fake: Iterable[Tensor],
                     subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> KIDResult:
    """KID by torchmetrics' ``KernelInceptionDistance``; its global-RNG subsets are drawn under ``seed``."""
    from torchmetrics.image.kid import KernelInceptionDistance

    check_kid_settings(subsets, subset_size)
    with warnings.catch_warnings():  # its notice that features are kept in memory: that is the point of KID
        warnings.filterwarnings("ignore", message=".*will save all extracted features", category=UserWarning)
        metric = KernelInceptionDistance(feature=extractor, subsets=subsets, subset_size=subset_size)
    n_real = _feed(metric, extractor, real, True)
    n_fake = _feed(metric, extractor, fake, False)
    check_kid_counts(n_real, n_fake, subsets, subset_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return KIDResult(float(mean), float(std), subsets, subset_size)
