"""mIoU: a segmenter runs on the generated photos; its predictions are scored against the label maps.

The Cityscapes protocol (as DRN's and GAN Compression's evaluation scripts): one confusion
matrix accumulated over *all* images, IoU per class = TP / (TP + FP + FN), mean over the
classes that occur (in the labels or the predictions; a class absent from both is skipped,
not counted as 0). Pixels whose label is the ignore index count nowhere. torchmetrics'
``MulticlassJaccardIndex(average="macro", ignore_index=...)`` does exactly this; its
``segmentation.MeanIoU`` instead averages per-image IoUs and has no ignore index, so it is not used.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

from ..metrics import GeneratedBatch, Metric, MetricContext, MetricValue, Need, Size, register_metric


def jaccard_metric(num_classes: int, ignore_index: int | None, device: torch.device | str = "cpu"):
    """A fresh torchmetrics accumulator following the protocol in the module docstring.

    ``validate_args=False``: its per-update value checks cost about 14x the update itself, and both
    inputs are already checked (label maps by the dataset loader, predictions are argmax indices).
    """
    from torchmetrics.classification import MulticlassJaccardIndex

    return MulticlassJaccardIndex(num_classes=num_classes, average="macro", ignore_index=ignore_index,
                                  validate_args=False).to(device)


def mean_iou(segmenter: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], num_classes: int,
             ignore_index: int | None) -> float:
    """mIoU of ``segmenter.predict`` on (images, labels) batches, e.g. the real validation photos."""
    device = next((p.device for p in segmenter.parameters()), torch.device("cpu"))
    metric = jaccard_metric(num_classes, ignore_index, device)
    for images, labels in batches:
        metric.update(segmenter.predict(images.to(device)), labels.to(device))
    return float(metric.compute())


@register_metric
class MeanIoU(Metric):
    """Mean intersection over union of the segmenter's predictions on generated images, higher is better."""

    name = "miou"
    direction = "maximize"
    needs = frozenset({Need.LABELS})
    description = "mean IoU of a segmenter run on generated images vs the label maps, higher is better"

    def __init__(self, context: MetricContext) -> None:
        super().__init__(context)
        jaccard_metric(2, None)  # imports torchmetrics (seconds) once, when the evaluator is built

    @property
    def identity(self) -> str:
        return self.context.segmenter.identity

    def start(self, model: nn.Module | None, size: Size) -> None:
        traits = self.context.traits
        self._metric = jaccard_metric(traits.num_classes, traits.ignore_index, self.context.device)

    def update(self, batch: GeneratedBatch) -> None:
        self._metric.update(batch.predictions, batch.label)

    def compute(self) -> MetricValue:
        return MetricValue(float(self._metric.compute()))
