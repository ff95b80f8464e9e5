"""The metric contract and registry: what a metric needs, which way is better, how it accumulates.

A :class:`Metric` class declares its ``name``, its ``direction`` (``minimize`` for FID/KID/latency,
``maximize`` for mIoU/PSNR/SSIM) and what it ``needs``; the registry refuses, with a
:class:`MetricUnavailableError`, a metric the dataset cannot give (mIoU without label maps,
PSNR/SSIM without paired targets), so the search service can refuse it before any work.

Lifecycle, driven by :class:`evaluators.evaluate.Evaluator`: the class is instantiated once per
evaluator with a :class:`MetricContext` (extractor, real statistics, segmenter: loaded once),
then for every evaluated generator :meth:`Metric.start`, :meth:`Metric.update` per batch of
generated images (in a fixed order), and :meth:`Metric.compute`. Implementations live in
:mod:`evaluators.metric_impls`, one small class each; they import this module and never the other
way round: look a metric up by name through :mod:`evaluators.metric_catalog`, which loads them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from foundation.errors import GanasError
from foundation.registry import Registry
from foundation.weights import WeightsSpec
from imagedata import FolderDataset, LabelledDataset

from .directions import DIRECTIONS

Size = tuple[int, int]


class MetricUnavailableError(GanasError):
    """A metric the evaluation dataset cannot give (e.g. mIoU on a dataset without label maps)."""


class UnknownMetricError(GanasError):
    """A metric name that is not registered."""


class MetricOptionError(GanasError):
    """A metric option with a value no metric can use; ``option`` names it."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


class Need(enum.Enum):
    """What a metric needs beyond generated images; each is checked against the dataset up front."""

    FEATURES = "features of the generated images and statistics of the split's real target images"
    LABELS = "label maps of the split (labelled layout) and a segmenter"
    PAIRED_TARGETS = "a ground-truth target for every input (aligned or labelled layout)"
    MODEL = "the static model itself, run at the evaluation size"
    TEACHER = "the teacher's output for every input (a teacher given to the evaluator)"


@dataclass(frozen=True)
class DatasetTraits:
    """What an evaluation split can give: layout, pairing, classes, and the image count on each side."""

    description: str
    layout: str
    paired: bool
    source_count: int
    target_count: int
    num_classes: int | None = None
    ignore_index: int | None = None

    @property
    def has_labels(self) -> bool:
        return self.num_classes is not None

    @classmethod
    def of(cls, dataset: FolderDataset) -> "DatasetTraits":
        """Traits of an :mod:`imagedata` split; unpaired domains are counted once each (no repeats)."""
        files = dataset.files
        if dataset.paired:
            source = target = len(dataset)
        else:  # the unaligned layout's domains, swapped by BtoA (see imagedata.layouts.unaligned)
            roles = ("A", "B") if dataset.direction == "AtoB" else ("B", "A")
            source, target = files.count(roles[0]), files.count(roles[1])
        spec = dataset.spec if isinstance(dataset, LabelledDataset) else None
        return cls(f"{dataset.layout} dataset {dataset.root} (split {dataset.split})", dataset.layout,
                   bool(dataset.paired), source, target, spec.num_classes if spec is not None else None,
                   spec.ignore_index if spec is not None else None)


@dataclass(frozen=True)
class MetricOptions:
    """Settings of individual metrics (KID subsets, latency timing); part of the evaluator's settings."""

    kid_subsets: int = 100
    kid_subset_size: int = 1000
    seed: int = 0
    latency_backend: str = "eager"
    latency_device: str | None = None  # None: the evaluation device
    latency_runs: int = 20
    latency_warmup: int = 3
    latency_threads: int | None = None

    def __post_init__(self) -> None:
        for name, (low, high, optional) in _WHOLE_OPTIONS.items():
            value = getattr(self, name)
            if value is None and optional:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise MetricOptionError(name, f"metric option {name} must be an integer from {low} to {high:,}"
                                        f"{' (or null)' if optional else ''}, got {_shown(value)}")
        for name, optional in _TEXT_OPTIONS.items():
            value = getattr(self, name)
            if not (value is None and optional) and (not isinstance(value, str) or not value.strip()):
                raise MetricOptionError(name, f"metric option {name} must be a non-empty name"
                                        f"{' (or null)' if optional else ''}, got {_shown(value)}")


# option -> (lowest, highest, may be None): KID needs subsets of at least 2 images; seeds as NumPy takes them
_WHOLE_OPTIONS = {"kid_subsets": (1, 2**31 - 1, False), "kid_subset_size": (2, 2**31 - 1, False),
                  "seed": (0, 2**32 - 1, False), "latency_runs": (1, 2**31 - 1, False),
                  "latency_warmup": (0, 2**31 - 1, False), "latency_threads": (1, 4096, True)}
_TEXT_OPTIONS = {"latency_backend": False, "latency_device": True}


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge integer"
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class MetricContext:
    """What metrics share, loaded once per evaluator."""

    traits: DatasetTraits
    options: MetricOptions
    device: torch.device
    extractor: Any = None  # evaluators.features.FeatureExtractor when a metric needs FEATURES
    real: Any = None  # evaluators.frechet.FeatureStatistics of the real target images
    segmenter: Any = None  # evaluators.segmenter.Segmenter when a metric needs LABELS
    teacher_identity: str | None = None  # which teacher (file and SHA-256) when a metric needs TEACHER
    vgg_weights: Any = None  # VGG16 weights file or folder for the perceptual metric (None: the usual places)


@dataclass(frozen=True)
class GeneratedBatch:
    """One batch of generated images with what the evaluator computed for them once, for every metric.

    ``fake``, ``inputs`` and ``target`` are in [-1, 1]; ``target`` only in paired splits,
    ``label`` and ``predictions`` (segmenter output on ``fake``) only when a metric needs labels,
    ``features`` (extractor output on ``fake``) only when a metric needs features, ``teacher`` (the
    teacher's output on ``inputs``, in [0, 1] at 8-bit levels) only when a metric needs the teacher.
    """

    inputs: Tensor
    fake: Tensor
    target: Tensor | None = None
    label: Tensor | None = None
    features: Tensor | None = None
    predictions: Tensor | None = None
    teacher: Tensor | None = None


@dataclass(frozen=True)
class MetricValue:
    """A metric's score and optional secondary numbers (e.g. KID's standard deviation)."""

    value: float
    extras: dict[str, float] = field(default_factory=dict)


class Metric(ABC):
    """Base of the registered metrics; subclasses set the class attributes and the three hooks."""

    name: ClassVar[str] = ""
    direction: ClassVar[str] = "minimize"
    needs: ClassVar[frozenset[Need]] = frozenset()
    description: ClassVar[str] = ""
    keeps_real_features: ClassVar[bool] = False  # KID draws subsets of the real features themselves
    cost: ClassVar[bool] = False  # True: a cost of the model itself (latency), not a score of its images
    weights: ClassVar[WeightsSpec | None] = None  # a pretrained network's file the metric reads itself (VGG16)

    def __init__(self, context: MetricContext) -> None:
        self.context = context

    @classmethod
    def check_available(cls, traits: DatasetTraits, options: MetricOptions) -> None:
        """Raise :class:`MetricUnavailableError` when ``traits`` lack a need; subclasses add count checks."""
        for need in sorted(cls.needs, key=lambda n: n.name):
            problem = _NEED_CHECKS[need](traits)
            if problem:
                raise MetricUnavailableError(f"{cls.name} needs {need.value}; {traits.description} {problem}")

    @property
    @abstractmethod
    def identity(self) -> str:
        """What produced the number (network and weights, settings), so only like numbers are compared."""

    @abstractmethod
    def start(self, model: nn.Module | None, size: Size) -> None:
        """Begin one evaluation; ``model`` is the static model when the metric needs MODEL, else None."""

    def update(self, batch: GeneratedBatch) -> None:
        """Accumulate one batch; the default ignores images (for metrics of the model itself)."""

    @abstractmethod
    def compute(self) -> MetricValue:
        """The metric's value over the batches since :meth:`start`."""


def _labels_missing(traits: DatasetTraits) -> str:
    return "" if traits.has_labels else ("has no label maps; use a labelled dataset (dataset.json, "
                                         "<split>/images/ and <split>/labels/), e.g. `ganas data make labels2scene`")


def _targets_missing(traits: DatasetTraits) -> str:
    return "" if traits.paired else "is unpaired (its B images are not the targets of its A images)"


_NEED_CHECKS = {
    Need.FEATURES: lambda traits: "",  # every layout has target-domain images
    Need.LABELS: _labels_missing,
    Need.PAIRED_TARGETS: _targets_missing,
    Need.MODEL: lambda traits: "",
    Need.TEACHER: lambda traits: "",  # any split has inputs; whether a teacher is given is the evaluator's check
}

# ----------------------------------------------------------------------------- registry

_METRICS: Registry[type[Metric]] = Registry("metric", UnknownMetricError, sort=False)


def register_metric(cls: type[Metric]) -> type[Metric]:
    """Class decorator adding a metric under ``cls.name``."""
    if not cls.name or cls.direction not in DIRECTIONS:
        raise ValueError(f"metric {cls.__name__} needs a name and a direction in {DIRECTIONS}")
    return _METRICS.register(cls.name, cls)


def registered_metrics() -> Registry[type[Metric]]:
    """The metric registry, in registration order (look-ups by name: :mod:`evaluators.metric_catalog`)."""
    return _METRICS
