"""PSNR and SSIM of generated images against their paired ground truth, through torchmetrics.

Images in the generators' [-1, 1] range are mapped to [0, 1] (``(x + 1) / 2``) and the
generated ones truncated to 8-bit levels, as pix2pix saves them; ``data_range`` is 1. PSNR is
computed per image (``10 log10(1 / MSE)`` over all pixels and channels) and averaged over
images, which is how image-translation papers report it (one global MSE would weight images
differently). SSIM uses the standard 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03,
averaged over the pixels at least 5 px from the border, channels and images, as Wang et al.
(scikit-image's ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``
agrees to float32 precision; see :class:`StructuralSimilarity` for torchmetrics' border).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
import torch
from torch import Tensor, nn

from ..features import QUANTIZE_TOLERANCE
from ..frechet import MetricInputError
from ..metrics import GeneratedBatch, Metric, MetricContext, MetricValue, Need, Size, register_metric

SSIM_WINDOW = 11


def unit_range(images: Tensor, quantize: bool) -> Tensor:
    """[-1, 1] -> [0, 1] float32; ``quantize`` truncates to the 256 levels of an 8-bit image as pix2pix's
    ``tensor2im`` saves it (the same rule as the Inception extractor, see ``evaluators.features``)."""
    unit = ((images.float() + 1) / 2).clamp(0, 1)
    if not quantize:
        return unit
    return torch.floor(unit * 255 + QUANTIZE_TOLERANCE).clamp_max(255) / 255


class _PairedMetric(Metric, ABC):
    needs = frozenset({Need.PAIRED_TARGETS})

    def __init__(self, context: MetricContext) -> None:
        super().__init__(context)
        self._make()  # imports torchmetrics (seconds) once, when the evaluator is built, not per evaluation

    @abstractmethod
    def _make(self) -> None:
        """Build the torchmetrics metric."""

    def start(self, model: nn.Module | None, size: Size) -> None:
        self._metric = self._make().to(self.context.device)

    def update(self, batch: GeneratedBatch) -> None:
        self._metric.update(unit_range(batch.fake, quantize=True), unit_range(batch.target, quantize=False))

    def compute(self) -> MetricValue:
        return MetricValue(float(self._metric.compute()))


@register_metric
class PeakSignalNoiseRatio(_PairedMetric):
    name = "psnr"
    direction = "maximize"
    description = "peak signal-to-noise ratio (dB) to the ground truth, per image then averaged, higher is better"
    identity = "torchmetrics-psnr(data_range=1,per-image mean,8-bit generated)"

    def _make(self):
        from torchmetrics.image import PeakSignalNoiseRatio as TorchmetricsPSNR

        return TorchmetricsPSNR(data_range=1.0, dim=(1, 2, 3), reduction="elementwise_mean")


@register_metric
class StructuralSimilarity(_PairedMetric):
    """Mean SSIM over the valid (border-cropped) SSIM map, per image, averaged over images.

    torchmetrics 1.9 averages the whole map, including windows centred within 5 px of the border
    that see its reflect padding; Wang et al.'s reference, scikit-image and pytorch-msssim leave
    those out. ganas takes torchmetrics' full map and crops it, to report the standard number.
    """

    name = "ssim"
    direction = "maximize"
    description = "structural similarity to the ground truth (11x11 Gaussian window), higher is better"
    identity = "torchmetrics-ssim(gaussian 11x11 sigma 1.5,data_range=1,border-cropped,8-bit generated)"

    def _make(self):
        from torchmetrics.functional.image import structural_similarity_index_measure

        return structural_similarity_index_measure

    def start(self, model: nn.Module | None, size: Size) -> None:
        if min(size) < SSIM_WINDOW:
            raise MetricInputError(f"SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window needs images of at least "
                                   f"{SSIM_WINDOW}x{SSIM_WINDOW}, got {size[0]}x{size[1]}")
        self._ssim = self._make()
        self._total = torch.zeros((), dtype=torch.float64)
        self._count = 0

    def update(self, batch: GeneratedBatch) -> None:
        self._add(unit_range(batch.fake, quantize=True), unit_range(batch.target, quantize=False))

    def _add(self, fake: Tensor, reference: Tensor) -> None:
        """Accumulate the border-cropped SSIM of each image of ``fake`` against ``reference`` (both in [0, 1])."""
        _, full = self._ssim(fake, reference, gaussian_kernel=True, sigma=1.5, kernel_size=SSIM_WINDOW,
                             data_range=1.0, reduction="none", return_full_image=True)
        pad = SSIM_WINDOW // 2
        valid = full[..., pad:-pad, pad:-pad].double()
        self._total += valid.reshape(valid.shape[0], -1).mean(1).sum().cpu()
        self._count += valid.shape[0]

    def compute(self) -> MetricValue:
        return MetricValue(float(self._total / self._count))
