"""FID and KID of generated images against the cached statistics of the split's real target images.

FID per candidate, fast: ``Tr((S1 S2)^(1/2))`` is the sum of square roots of the eigenvalues of
``R S2 R`` with ``R = S1^(1/2)`` (see :mod:`evaluators.frechet`). The real side ``R`` is the same
for every candidate, so it is computed once per evaluator; and with ``S2 = Xc^T Xc / (n - 1)`` for
the n centred generated features ``Xc``, ``R S2 R = M^T M`` with ``M = Xc R / sqrt(n - 1)``, whose
non-zero eigenvalues are those of the n x n matrix ``M M^T``. At 2048-d Inception features and
n <= 2048 images that replaces two 2048 x 2048 eigendecompositions per candidate (about 13 s on
two CPU cores) by one n x n one; the value agrees with :func:`evaluators.frechet.frechet_distance`
(tests/evaluators/test_metrics.py).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..frechet import FeatureStatistics, MetricInputError, check_fid_count, check_kid_counts, kid_from_statistics
from ..metrics import (DatasetTraits, GeneratedBatch, Metric, MetricContext, MetricOptions, MetricValue, Need, Size,
                       register_metric)


def psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance (eigenvalues below zero are rounding noise, clipped)."""
    values, vectors = np.linalg.eigh((sigma + sigma.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def fid_with_real_root(mu1: np.ndarray, sigma1_trace: float, root1: np.ndarray, fake: np.ndarray) -> float:
    """FID of ``fake`` features (n x d) against real statistics given as mean, trace and covariance root."""
    n, d = fake.shape
    check_fid_count(n, d, "generated")
    if not np.isfinite(fake).all():
        raise MetricInputError("the generated images' features contain NaN or infinite values")
    mu2 = fake.mean(axis=0)
    centred = fake - mu2
    m = centred @ root1 / np.sqrt(n - 1)
    small = m @ m.T if n < d else m.T @ m
    eigenvalues = np.linalg.eigvalsh((small + small.T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + sigma1_trace + (centred * centred).sum() / (n - 1) - 2 * trace_sqrt)


class _FeatureMetric(Metric):
    """Collects the generated images' features (computed once per batch by the evaluator)."""

    needs = frozenset({Need.FEATURES})

    def start(self, model: nn.Module | None, size: Size) -> None:
        self._chunks: list[Tensor] = []

    def update(self, batch: GeneratedBatch) -> None:
        self._chunks.append(batch.features)

    def _fake(self, keep_features: bool) -> FeatureStatistics:
        features = torch.cat(self._chunks).double()
        return FeatureStatistics.from_features(features, self.context.extractor.identity, keep_features)


@register_metric
class FrechetInceptionDistance(_FeatureMetric):
    """FID: Frechet distance between Gaussians fitted to real and generated features."""

    name = "fid"
    direction = "minimize"
    description = "Frechet distance of extractor features (Inception pool3 by default), lower is better"

    @classmethod
    def check_available(cls, traits: DatasetTraits, options: MetricOptions) -> None:
        super().check_available(traits, options)
        for side, count in (("input", traits.source_count), ("real target", traits.target_count)):
            if count < 2:
                raise MetricInputError(f"FID needs at least 2 {side} images to estimate a covariance; "
                                       f"{traits.description} has {count}")

    def __init__(self, context: MetricContext) -> None:
        super().__init__(context)
        real = context.real
        if real.identity != context.extractor.identity:
            raise MetricInputError(f"real statistics of extractor {real.identity} cannot score features of "
                                   f"{context.extractor.identity}")
        self._real_root = psd_sqrt(real.sigma)  # once per evaluator: the real side never changes
        self._real_trace = float(np.trace(real.sigma))

    @property
    def identity(self) -> str:
        return self.context.extractor.identity

    def compute(self) -> MetricValue:
        fake = torch.cat(self._chunks).double().numpy()
        return MetricValue(fid_with_real_root(self.context.real.mu, self._real_trace, self._real_root, fake))


@register_metric
class KernelInceptionDistance(_FeatureMetric):
    """KID: unbiased MMD^2 with a cubic polynomial kernel, averaged over seeded random subsets."""

    name = "kid"
    direction = "minimize"
    description = "kernel (MMD^2) distance of extractor features over random subsets, lower is better"
    keeps_real_features = True

    @classmethod
    def check_available(cls, traits: DatasetTraits, options: MetricOptions) -> None:
        super().check_available(traits, options)
        try:
            check_kid_counts(traits.target_count, traits.source_count, options.kid_subsets, options.kid_subset_size)
        except MetricInputError as exc:
            raise MetricInputError(f"{exc} ({traits.description}: {traits.source_count} input and "
                                   f"{traits.target_count} real target images)") from None

    @property
    def identity(self) -> str:
        options = self.context.options
        return (f"{self.context.extractor.identity};subsets={options.kid_subsets},"
                f"subset_size={options.kid_subset_size},seed={options.seed}")

    def compute(self) -> MetricValue:
        options = self.context.options
        result = kid_from_statistics(self.context.real, self._fake(keep_features=True), options.kid_subsets,
                                     options.kid_subset_size, options.seed)
        return MetricValue(result.mean, {"kid_std": result.std})
