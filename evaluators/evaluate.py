"""The evaluation entry point search workers call: build an :class:`Evaluator` once, evaluate many generators.

Construction does everything that does not depend on the generator, once: checks that every
requested metric can be computed on the split (:class:`~evaluators.metrics.MetricUnavailableError`
otherwise), loads the feature extractor and the segmenter, and gets the real-image statistics
from the cache (computing and storing them on a miss). :meth:`Evaluator.evaluate` then runs a
static generator, or an elastic supernet at a config (``generator.configured(config)``), over the split in
a fixed order, in batches, in eval mode without autograd, and feeds every metric; the same
generator and config give the same numbers bit for bit on the same machine. Each number comes
with the identity of what produced it (extractor, segmenter, latency backend) so numbers from
different networks are never compared, and with the time spent generating and in each metric.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from foundation.errors import GanasError
from imagedata import FolderDataset
from supernet.errors import ConfigError
from supernet.extract import extract_subnet
from supernet.generators import ChannelGenerator

from .features import FeatureExtractor, load_extractor
from .frechet import FeatureStatistics
from .metric_catalog import get_metric, parse_metric_names
from .metric_impls.paired import unit_range
from .metrics import (DatasetTraits, GeneratedBatch, Metric, MetricContext, MetricOptions, MetricUnavailableError,
                      Need, Size)
from .reference_cache import ReferenceCache, ReferenceKey, describe_preprocess
from .segmenter import Segmenter, SegmenterError, load_segmenter

GENERATING, LOADING, COMPUTE = "generating", "loading", ":compute"


class EvaluationInputError(GanasError):
    """Something the evaluation cannot take: bad settings, images of another size, an unusable generator."""


@dataclass(frozen=True)
class EvaluationSettings:
    """How an :class:`Evaluator` evaluates.

    ``size``: the (height, width) every image must have (None: the first image's). ``extractor``:
    a registered name (``inception``), a TorchScript file, or a :class:`FeatureExtractor`.
    ``segmenter``: a ganas segmenter checkpoint, a TorchScript file, or a :class:`Segmenter`.
    ``cache_dir``: where real-image statistics are kept (None: computed in memory each time).
    ``teacher``: the generator the ``teacher-*`` metrics compare with, and ``teacher_identity`` what it is
    (its file and SHA-256: see :func:`teacher_identity`); ``vgg_weights``: VGG16's weights for
    ``teacher-perceptual`` (None: ``$GANAS_VGG16_WEIGHTS``, then the torch hub cache).
    """

    batch_size: int = 8
    size: Size | None = None
    extractor: str | FeatureExtractor = "inception"
    inception_weights: str | os.PathLike | None = None
    segmenter: str | os.PathLike | Segmenter | None = None
    cache_dir: str | os.PathLike | None = None
    device: str = "cpu"
    options: MetricOptions = field(default_factory=MetricOptions)
    progress: bool = False
    teacher: nn.Module | None = None
    teacher_identity: str | None = None
    vgg_weights: str | os.PathLike | None = None

    @classmethod
    def from_keywords(cls, **keywords: Any) -> "EvaluationSettings":
        """Settings from keyword arguments; an unknown one is an :class:`EvaluationInputError` listing the allowed."""
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(keywords) - set(allowed))
        if unknown:
            raise EvaluationInputError(f"unknown evaluation setting(s) {', '.join(unknown)}; allowed: "
                                       f"{', '.join(allowed)}")
        return cls(**keywords)


@dataclass(frozen=True)
class EvaluationResult:
    """The numbers of one evaluation and what produced them.

    ``metrics``: name -> value; ``identities``: name -> extractor / segmenter / backend identity;
    ``directions``: name -> minimize | maximize; ``extras``: secondary numbers (``kid_std``,
    ``latency_p90_ms``). Seconds: total, generating, in metrics (features, segmentation and every
    metric's own work), and per part: ``loading``, ``generating``, ``features``, ``segmenter``, ``teacher`` (its
    outputs, computed on the first evaluation only), each metric's per-batch work under its name and its
    once-per-evaluation work under ``NAME:compute``.
    """

    metrics: dict[str, float]
    identities: dict[str, str]
    directions: dict[str, str]
    extras: dict[str, float]
    num_images: int
    seconds_total: float
    seconds_generating: float
    seconds_metrics: float
    seconds_by_part: dict[str, float]
    dataset: str
    size: Size
    config: tuple[int, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["size"] = list(self.size)
        data["config"] = list(self.config) if self.config is not None else None
        return data


class _PartTimer:
    """Seconds per named part; on CUDA each part waits for its kernels so the time is really its own."""

    def __init__(self, device: torch.device) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cuda = device.type == "cuda"

    @contextlib.contextmanager
    def __call__(self, part: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.cuda:
                torch.cuda.synchronize()
            self.seconds[part] += time.perf_counter() - start


def _resolve_extractor(settings: EvaluationSettings) -> FeatureExtractor:
    if isinstance(settings.extractor, FeatureExtractor):
        if settings.inception_weights is not None:
            raise EvaluationInputError("inception_weights applies to the 'inception' extractor, not to a given "
                                       "extractor object")
        return settings.extractor
    options = {"weights": settings.inception_weights} if settings.inception_weights is not None else {}
    return load_extractor(str(settings.extractor), **options)


def _resolve_segmenter(settings: EvaluationSettings, traits: DatasetTraits) -> Segmenter:
    if settings.segmenter is None:
        raise SegmenterError("mIoU needs a segmenter: pass --segmenter PATH, a checkpoint from `ganas train "
                             "segmenter --data DIR --out PATH` or a TorchScript file (images -> logits)")
    segmenter = settings.segmenter if isinstance(settings.segmenter, Segmenter) else load_segmenter(settings.segmenter)
    if segmenter.num_classes != traits.num_classes:
        raise SegmenterError(f"segmenter {segmenter.identity} predicts {segmenter.num_classes} classes but "
                             f"{traits.description} has {traits.num_classes}; use a segmenter trained on this "
                             "dataset's classes")
    return segmenter


def teacher_identity(path: str | os.PathLike, sha256: str) -> str:
    """How a teacher-fidelity number names its teacher: the file and its SHA-256, so only numbers against the
    same teacher are compared."""
    return f"teacher {os.fspath(path)} sha256:{sha256}"


def _stack(items: list[dict], key: str, size: Size) -> Tensor:
    """Stack one role of the items, refusing an image whose size is not the evaluation size."""
    path_key = "A_path" if key == "A" else "B_path"
    for item in items:
        height, width = item[key].shape[-2:]
        if (height, width) != tuple(size):
            raise EvaluationInputError(
                f"{item.get(path_key, 'an image')} is {height}x{width} but the evaluation size is {size[0]}x{size[1]}; "
                "every image must have one size: resize them all (ganas evaluate --size N) or use another split")
    return torch.stack([item[key] for item in items])


def _index_batches(count: int, batch_size: int) -> Iterator[range]:
    for start in range(0, count, batch_size):
        yield range(start, min(start + batch_size, count))


def _run(generator: nn.Module, inputs: Tensor) -> Tensor:
    with torch.no_grad():
        return generator(inputs)


@contextlib.contextmanager
def _evaluation_mode(generator: nn.Module, config: tuple[int, ...] | None, device: torch.device) -> Iterator[None]:
    """Eval mode on ``device``, an elastic supernet configured at ``config`` (``None``: full width); the
    training flag is restored afterwards, the config by leaving the supernet's ``configured`` block."""
    was_training = generator.training
    elastic = isinstance(generator, ChannelGenerator) and generator.elastic
    generator.to(device).eval()
    try:
        with generator.configured(config) if elastic else contextlib.nullcontext():
            yield
    finally:
        generator.train(was_training)


def _checked_config(generator: nn.Module, config: Sequence[int] | None) -> tuple[int, ...] | None:
    if config is None:
        return None
    numbers = tuple(int(c) for c in config)
    if not isinstance(generator, ChannelGenerator):
        raise EvaluationInputError("a config applies to a ganas supernet (ChannelGenerator built with elastic=True), "
                                   f"not to a {type(generator).__name__}")
    if not generator.elastic and numbers != tuple(generator.config):
        raise ConfigError(f"this static {generator.arch} generator is built at config "
                          f"{'_'.join(map(str, generator.config))}, not {'_'.join(map(str, numbers))}; evaluate a "
                          "supernet to choose a config")
    return numbers if generator.elastic else None


def check_input_channels(generator: nn.Module, channels: int, source: str = "the data") -> None:
    """Refuse a ganas generator that takes other inputs than the data's ``channels``-channel images (a label-map
    generator such as SPADE: one clear error instead of a convolution's shape error)."""
    checker = getattr(generator, "check_input_channels", None)
    if callable(checker):
        checker(channels, source)


def static_model(generator: nn.Module, config: tuple[int, ...] | None) -> nn.Module:
    """The plain network a config stands for (the extracted subnet of a supernet), as deployed and timed."""
    if isinstance(generator, ChannelGenerator) and generator.elastic:
        return extract_subnet(generator, config if config is not None else generator.config)
    return generator


class Evaluator:
    """Evaluates generators on one split with a fixed list of metrics; see the module docstring."""

    def __init__(self, dataset: FolderDataset, metrics: str | Sequence[str],
                 settings: EvaluationSettings | None = None) -> None:
        self.settings = settings or EvaluationSettings()
        if not isinstance(self.settings.batch_size, int) or self.settings.batch_size < 1:
            raise EvaluationInputError(f"batch size must be a positive integer, got {self.settings.batch_size!r}")
        if not isinstance(dataset, FolderDataset):
            raise EvaluationInputError(f"evaluation needs an imagedata split (imagedata.create_dataset), got "
                                       f"{type(dataset).__name__}")
        self.dataset = dataset
        self.names = parse_metric_names(metrics)
        self.traits = DatasetTraits.of(dataset)
        classes = [get_metric(name) for name in self.names]
        for cls in classes:
            cls.check_available(self.traits, self.settings.options)
        self.needs = frozenset().union(*(cls.needs for cls in classes))
        try:
            self.device = torch.device(self.settings.device)
        except (RuntimeError, TypeError):
            raise EvaluationInputError(f"unknown device {self.settings.device!r}; use cpu or cuda") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise EvaluationInputError("device cuda was asked for but CUDA is not available; use cpu")
        first = dataset[0]["A"]
        self.input_channels = int(first.shape[0])  # what every generator evaluated here must take
        size = self.settings.size if self.settings.size is not None else tuple(first.shape[-2:])
        size = (size, size) if isinstance(size, int) else size
        self.size: Size = (int(size[0]), int(size[-1]))
        self.context = MetricContext(self.traits, self.settings.options, self.device,
                                     vgg_weights=self.settings.vgg_weights)
        self._teacher_outputs: dict[int, Tensor] = {}  # batch start -> the teacher's 8-bit output, computed once
        if Need.TEACHER in self.needs:
            self.context.teacher_identity = self._checked_teacher([cls.name for cls in classes
                                                                   if Need.TEACHER in cls.needs])
        self.dataset_hash = dataset.fingerprint()  # the split is taken as fixed for this evaluator's life
        self.reference_key: ReferenceKey | None = None
        self.reference_cache_hit: bool | None = None
        if Need.FEATURES in self.needs:
            self.context.extractor = _resolve_extractor(self.settings).to(self.device).eval()
            self.reference_key = ReferenceKey(self.dataset_hash, dataset.layout, dataset.direction,
                                              describe_preprocess(dataset.preprocess), self.size,
                                              self.context.extractor.identity)
            keep = any(cls.keeps_real_features for cls in classes)
            self.context.real, self.reference_cache_hit = self._real_statistics(keep)
        if Need.LABELS in self.needs:
            self.context.segmenter = _resolve_segmenter(self.settings, self.traits).to(self.device).eval()
        self.metrics: list[Metric] = [cls(self.context) for cls in classes]

    def _checked_teacher(self, names: list[str]) -> str:
        teacher, identity = self.settings.teacher, self.settings.teacher_identity
        if teacher is None:
            raise MetricUnavailableError(
                f"{', '.join(names)} compare(s) a generator's outputs with its teacher's, but no teacher was given: "
                "pass --teacher FILE to ganas evaluate (a search uses the teacher recorded with its supernet; "
                "register the supernet with --teacher FILE)")
        if not isinstance(teacher, nn.Module):
            raise EvaluationInputError(f"the teacher must be a torch module, got {type(teacher).__name__}")
        if not identity:
            raise EvaluationInputError("a teacher needs teacher_identity (its file and SHA-256, see "
                                       "evaluators.evaluate.teacher_identity), so its numbers are not mixed up")
        checker = getattr(teacher, "check_input_size", None)
        if callable(checker):
            checker(*self.size)
        check_input_channels(teacher, self.input_channels, "the teacher's data")
        return identity

    def _teacher_batch(self, start: int, inputs: Tensor) -> Tensor:
        """The teacher's output on the batch at ``start`` in [0, 1] at 8-bit levels (as its saved images),
        computed on the first evaluation and kept, since the split and the teacher are fixed."""
        if start not in self._teacher_outputs:
            teacher = self.settings.teacher
            with _evaluation_mode(teacher, None, self.device):
                out = _run(teacher, inputs)
            self._check_output(out, inputs)
            self._teacher_outputs[start] = (unit_range(out, quantize=True) * 255).round().to(torch.uint8).cpu()
        return self._teacher_outputs[start].to(self.device).float() / 255

    # -- real images ---------------------------------------------------------------------
    def _compute_real(self, keep_features: bool) -> FeatureStatistics:
        extractor, chunks = self.context.extractor, []
        batches = _index_batches(self.traits.target_count, self.settings.batch_size)
        total = -(-self.traits.target_count // self.settings.batch_size)
        for indices in tqdm(batches, total=total, desc="real-image features", unit="batch",
                            disable=not self.settings.progress, leave=False):
            images = _stack([self.dataset[i] for i in indices], "B", self.size)
            chunks.append(extractor.features(images.to(self.device)).cpu())
        return FeatureStatistics.from_features(torch.cat(chunks).double(), extractor.identity, keep_features)

    def _real_statistics(self, keep_features: bool) -> tuple[FeatureStatistics, bool]:
        if self.settings.cache_dir is None:
            return self._compute_real(keep_features), False
        cache = ReferenceCache(Path(self.settings.cache_dir))
        return cache.get_or_compute(self.reference_key, lambda: self._compute_real(keep_features), keep_features)

    # -- generated images ----------------------------------------------------------------
    def _check_output(self, fake: Tensor, inputs: Tensor) -> None:
        if not isinstance(fake, Tensor) or fake.dim() != 4 or fake.shape[0] != inputs.shape[0] \
                or fake.shape[-2:] != inputs.shape[-2:]:
            shape = tuple(fake.shape) if isinstance(fake, Tensor) else type(fake).__name__
            raise EvaluationInputError(f"the generator returned {shape} for inputs {tuple(inputs.shape)}; it must "
                                       "return one image per input, of the input's height and width")

    def evaluate(self, generator: nn.Module, config: Sequence[int] | None = None) -> EvaluationResult:
        """Scores of ``generator`` (at ``config`` when it is an elastic supernet) with every metric."""
        config = _checked_config(generator, config)
        checker = getattr(generator, "check_input_size", None)
        if callable(checker):
            checker(*self.size)
        check_input_channels(generator, self.input_channels)
        timer, start = _PartTimer(self.device), time.perf_counter()
        with _evaluation_mode(generator, config, self.device):
            timed = static_model(generator, config) if Need.MODEL in self.needs else None
            for metric in self.metrics:
                with timer(metric.name):
                    metric.start(timed if Need.MODEL in metric.needs else None, self.size)
            batches = _index_batches(self.traits.source_count, self.settings.batch_size)
            total = -(-self.traits.source_count // self.settings.batch_size)
            for indices in tqdm(batches, total=total, desc="evaluating", unit="batch",
                                disable=not self.settings.progress, leave=False):
                self._evaluate_batch(generator, indices, timer)
            values = {}
            for metric in self.metrics:
                with timer(f"{metric.name}{COMPUTE}"):
                    values[metric.name] = metric.compute()
        seconds = dict(timer.seconds)
        in_metrics = sum(v for k, v in seconds.items() if k not in (GENERATING, LOADING))
        extras = {k: v for value in values.values() for k, v in value.extras.items()}
        return EvaluationResult(
            {name: value.value for name, value in values.items()}, {m.name: m.identity for m in self.metrics},
            {m.name: m.direction for m in self.metrics}, extras, self.traits.source_count,
            time.perf_counter() - start, seconds.get(GENERATING, 0.0), in_metrics, seconds,
            self.dataset_hash, self.size, config)

    def _evaluate_batch(self, generator: nn.Module, indices: range, timer: _PartTimer) -> None:
        with timer(LOADING):
            items = [self.dataset[i] for i in indices]
            inputs = _stack(items, "A", self.size).to(self.device)
            target = _stack(items, "B", self.size).to(self.device) if self.traits.paired else None
            label = torch.stack([item["label"] for item in items]).to(self.device) \
                if Need.LABELS in self.needs else None
        with timer(GENERATING):
            fake = _run(generator, inputs)
        self._check_output(fake, inputs)
        features = predictions = None
        if Need.FEATURES in self.needs:
            with timer("features"):
                features = self.context.extractor.features(fake)
        if Need.LABELS in self.needs:
            with timer("segmenter"):
                predictions = self.context.segmenter.predict(fake)
        teacher = None
        if Need.TEACHER in self.needs:
            with timer("teacher"):
                teacher = self._teacher_batch(indices.start, inputs)
        batch = GeneratedBatch(inputs, fake, target, label, features, predictions, teacher)
        for metric in self.metrics:
            with timer(metric.name):
                metric.update(batch)

    def sample_grid(self, generator: nn.Module, config: Sequence[int] | None = None, n: int = 4,
                    reference: nn.Module | None = None) -> np.ndarray:
        """The first ``n`` items of the split as rows of input | reference (the teacher) | generated | target."""
        return sample_grid(generator, self.dataset, config, n, self.settings.device, reference)


def evaluate(generator: nn.Module, split: FolderDataset, metrics: str | Sequence[str] = ("fid",),
             config: Sequence[int] | None = None, **settings: Any) -> EvaluationResult:
    """One-off evaluation: ``Evaluator(split, metrics, EvaluationSettings(**settings)).evaluate(generator, config)``."""
    return Evaluator(split, metrics, EvaluationSettings.from_keywords(**settings)).evaluate(generator, config)


def _to_uint8(image: Tensor) -> np.ndarray:
    pixels = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(1, 2, 0).numpy()


def sample_grid(generator: nn.Module, dataset: FolderDataset, config: Sequence[int] | None = None, n: int = 4,
                device: str = "cpu", reference: nn.Module | None = None) -> np.ndarray:
    """(H, W, 3) uint8: one row per item (the first ``n``), columns input | reference (a static generator such as
    the teacher, if given) | generated | target (if paired), so a compressed model is seen next to its teacher."""
    if not isinstance(n, int) or n < 1:
        raise EvaluationInputError(f"a sample grid needs n >= 1 rows, got {n!r}")
    config = _checked_config(generator, config)
    count = min(n, DatasetTraits.of(dataset).source_count)
    items = [dataset[i] for i in range(count)]
    size = tuple(items[0]["A"].shape[-2:])
    for model in (generator, reference):
        if model is not None:
            check_input_channels(model, int(items[0]["A"].shape[0]))
    inputs = _stack(items, "A", size)
    with _evaluation_mode(generator, config, torch.device(device)):
        fake = _run(generator, inputs.to(device)).cpu()
    columns = [inputs]
    if reference is not None:
        with _evaluation_mode(reference, None, torch.device(device)):
            columns.append(_run(reference, inputs.to(device)).cpu())
    columns += [fake] + ([_stack(items, "B", size)] if dataset.paired else [])
    rows = [np.concatenate([_to_uint8(column[i]) for column in columns], axis=1) for i in range(count)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0))
