"""Fidelity to the teacher: a generator's outputs scored against its teacher's outputs on the same inputs.

For unpaired tasks there is no ground truth to score against, and FID needs Inception weights a user
may not have; what a compressed generator is asked to do is reproduce its teacher. Both sides are
8-bit images in [0, 1]: the generated ones truncated as pix2pix saves them, the teacher's computed
once per evaluator the same way (:class:`evaluators.evaluate.Evaluator`). Each identity names the
teacher (file and SHA-256), so numbers against different teachers are never compared.

* ``teacher-psnr``: per-image ``10 log10(1 / MSE)`` averaged over images. Identical images would score
  infinity; their MSE is floored at half the smallest non-zero one (one 8-bit level in one value), so
  they score 3 dB above the closest possible non-identical image.
* ``teacher-ssim``: the ``ssim`` metric's SSIM (11x11 Gaussian window, border-cropped) to the teacher.
* ``teacher-perceptual``: a VGG16 distance, LPIPS's formula with uniform weights (Zhang et al. 2018's
  "baseline"): at relu1_2, relu2_2, relu3_3 and relu4_3 the features are unit-normalised over channels,
  and the squared differences summed over channels, averaged over pixels, summed over layers; per image,
  averaged over images. It needs torchvision's ``vgg16-397923af.pth`` on disk.
"""
from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor, nn

from ..metrics import GeneratedBatch, Metric, MetricContext, MetricValue, Need, Size, register_metric
from ..vgg import TAPS, VGG16_WEIGHTS, VGG16FeatureExtractor
from .paired import StructuralSimilarity, unit_range

LEVELS = 255


def _against(context: MetricContext) -> str:
    return f" vs {context.teacher_identity}"


class _MeanPerImage(Metric):
    """A per-image score averaged over images, in float64."""

    def start(self, model: nn.Module | None, size: Size) -> None:
        self._total = torch.zeros((), dtype=torch.float64)
        self._count = 0

    def update(self, batch: GeneratedBatch) -> None:
        scores = self._scores(unit_range(batch.fake, quantize=True), batch.teacher)
        self._total += scores.double().sum().cpu()
        self._count += scores.shape[0]

    @abstractmethod
    def _scores(self, fake: Tensor, teacher: Tensor) -> Tensor:
        """One score per image of ``fake`` against ``teacher`` (both (N, C, H, W) in [0, 1])."""

    def compute(self) -> MetricValue:
        return MetricValue(float(self._total / self._count))


@register_metric
class TeacherPSNR(_MeanPerImage):
    name = "teacher-psnr"
    direction = "maximize"
    needs = frozenset({Need.TEACHER})
    description = "peak signal-to-noise ratio (dB) to the teacher's outputs, per image then averaged, higher is better"

    @property
    def identity(self) -> str:
        return "psnr(data_range=1,per-image mean,8-bit both,identical: MSE floored at half a level)" \
            + _against(self.context)

    def _scores(self, fake: Tensor, teacher: Tensor) -> Tensor:
        values = fake[0].numel()
        mse = (fake.double() - teacher.double()).pow(2).reshape(fake.shape[0], -1).mean(1)
        floor = 1.0 / (2 * LEVELS ** 2 * values)
        return 10 * torch.log10(1.0 / mse.clamp_min(floor))


@register_metric
class TeacherSSIM(StructuralSimilarity):
    name = "teacher-ssim"
    needs = frozenset({Need.TEACHER})
    description = "structural similarity to the teacher's outputs (11x11 Gaussian window), higher is better"

    @property
    def identity(self) -> str:  # the ssim metric's settings, against the teacher
        return "torchmetrics-ssim(gaussian 11x11 sigma 1.5,data_range=1,border-cropped,8-bit both)" \
            + _against(self.context)

    def update(self, batch: GeneratedBatch) -> None:
        self._add(unit_range(batch.fake, quantize=True), batch.teacher)


@register_metric
class TeacherPerceptual(_MeanPerImage):
    name = "teacher-perceptual"
    direction = "minimize"
    needs = frozenset({Need.TEACHER})
    description = "VGG16 feature distance to the teacher's outputs (LPIPS's formula, uniform weights), lower is better"
    weights = VGG16_WEIGHTS

    def __init__(self, context: MetricContext) -> None:
        super().__init__(context)
        # loaded once per evaluator; a missing file is a WeightsNotFoundError naming it and where to put it
        self._vgg = VGG16FeatureExtractor.from_pretrained(context.vgg_weights).to(context.device)

    @property
    def identity(self) -> str:
        return f"vgg16-397923af({','.join(TAPS)};unit channels,uniform weights,imagenet norm,8-bit both)" \
            + _against(self.context)

    def _scores(self, fake: Tensor, teacher: Tensor) -> Tensor:
        with torch.no_grad():
            ours, theirs = self._vgg(fake * 2 - 1), self._vgg(teacher * 2 - 1)
        total = torch.zeros(fake.shape[0], dtype=torch.float64, device=fake.device)
        for a, b in zip(ours, theirs):
            a, b = _unit_channels(a.double()), _unit_channels(b.double())
            total += (a - b).pow(2).sum(1).mean((1, 2))
        return total


def _unit_channels(features: Tensor, eps: float = 1e-10) -> Tensor:
    """Each pixel's feature vector divided by its L2 norm (LPIPS's ``normalize_tensor``)."""
    return features / (features.pow(2).sum(1, keepdim=True).sqrt() + eps)

