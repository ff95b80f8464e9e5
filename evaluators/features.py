"""Feature extractors for FID/KID: one small interface, a registry, and TorchScript files.

Every extractor maps images in [-1, 1] (the generators' tanh range), shape (N, C, H, W) float,
to (N, num_features) features, and carries an ``identity`` string recorded with every score, so
numbers computed with different networks, weights or preprocessing are never compared:

* ``inception`` -> ``inception-v3-fid:<weights digest>``: the standard FID network, torch-fidelity /
  torchmetrics preprocessing; ``inception-pytorch-fid`` uses pytorch-fid's (GAN Compression's)
  resize and its identity says so;
* a TorchScript file -> ``torchscript:<sha256 prefix of the file>:<file name>``;
* any name added with :func:`register_extractor`.

Extractors have a ``num_features`` attribute, so torchmetrics' FID/KID accept them as ``feature=``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
import inspect
import os
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn

from foundation.errors import GanasError, WeightsFileError
from foundation.hashing import file_sha256
from foundation.registry import Registry
from foundation.weights import WeightsSpec, find_weights

from .inception import (DEFAULT_PREPROCESSING, NUM_FEATURES, FIDInceptionV3, get_preprocessing, load_fid_inception,
                        weights_digest)
from .torchscript import archive_members, is_torchscript, load_torchscript, probe_width
from .weights import INCEPTION_WEIGHTS, find_inception_weights

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript")
RANGE_SLACK = 1e-3
# Values within this of the next integer level count as that level when quantising, so a real
# uint8 image converted to [-1, 1] and back is unchanged despite float32 rounding.
QUANTIZE_TOLERANCE = 1e-3


class ExtractorError(GanasError):
    """An unknown extractor name, an unreadable extractor file, or an extractor with bad output."""


class ExtractorInputError(GanasError):
    """Images an extractor cannot take (wrong shape, dtype or value range)."""


def check_images(images: Tensor, channels: int | None = 3) -> None:
    """Raise :class:`ExtractorInputError` unless ``images`` is a float (N, C, H, W) batch in [-1, 1]."""
    if not isinstance(images, Tensor) or not torch.is_floating_point(images):
        kind = images.dtype if isinstance(images, Tensor) else type(images).__name__
        raise ExtractorInputError(f"images must be a float tensor in [-1, 1], got {kind}")
    if images.dim() != 4 or images.shape[0] == 0 or (channels is not None and images.shape[1] != channels):
        want = f"(N, {channels}, H, W)" if channels is not None else "(N, C, H, W)"
        raise ExtractorInputError(f"images must have shape {want} with N >= 1, got {tuple(images.shape)}")
    low, high = float(images.min()), float(images.max())
    if low < -1 - RANGE_SLACK or high > 1 + RANGE_SLACK:
        raise ExtractorInputError(
            f"images must be in [-1, 1] (generator tanh range), got values in [{low:.4g}, {high:.4g}]; "
            "convert uint8 pixels p with p / 127.5 - 1")


class FeatureExtractor(nn.Module, ABC):
    """Images in [-1, 1], (N, C, H, W) float -> (N, num_features) features; subclasses set both attributes."""

    num_features: int
    identity: str
    channels: int | None = 3

    @abstractmethod
    def forward(self, images: Tensor) -> Tensor:
        """(N, C, H, W) images in [-1, 1] -> (N, num_features)."""

    def features(self, images: Tensor) -> Tensor:
        """``forward`` with input and output checked, without autograd, as float32."""
        check_images(images, self.channels)
        with torch.no_grad():
            out = self(images)
        if not isinstance(out, Tensor) or tuple(out.shape) != (images.shape[0], self.num_features):
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ExtractorError(f"extractor {self.identity} returned {shape}, expected "
                                 f"({images.shape[0]}, {self.num_features})")
        return out.float()


def extract_features(extractor: FeatureExtractor, batches: Iterable[Tensor]) -> Tensor:
    """Features of every image in ``batches`` (moved to the extractor's device), stacked on the CPU."""
    device = next((p.device for p in extractor.parameters()), torch.device("cpu"))
    chunks = [extractor.features(batch.to(device)).cpu() for batch in batches]
    if not chunks:
        raise ExtractorInputError("no images to extract features from")
    return torch.cat(chunks)


class InceptionExtractor(FeatureExtractor):
    """The FID Inception-v3 pool3 features (2048-d) of images in [-1, 1].

    Images become pixels in [0, 255] first; ``quantize`` truncates them to integer levels as
    saving a generated image does (pix2pix/CycleGAN ``tensor2im``, torchmetrics ``normalize``),
    so generated and real images are measured alike.
    """

    def __init__(self, network: FIDInceptionV3, preprocessing: str = DEFAULT_PREPROCESSING,
                 quantize: bool = True) -> None:
        super().__init__()
        self.network = network.eval()
        self.preprocess = get_preprocessing(preprocessing)
        self.preprocessing = preprocessing
        self.quantize = quantize
        self.num_features = NUM_FEATURES
        options = [f"preprocessing={preprocessing}"] if preprocessing != DEFAULT_PREPROCESSING else []
        options += [] if quantize else ["quantize=no"]
        suffix = f"({','.join(options)})" if options else ""
        self.identity = f"inception-v3-fid{suffix}:{weights_digest(network)}"

    def to_pixels(self, images: Tensor) -> Tensor:
        """[-1, 1] -> [0, 255] float, truncated to integer levels when ``quantize``."""
        pixels = (images.float().clamp(-1, 1) + 1) / 2 * 255
        return torch.floor(pixels + QUANTIZE_TOLERANCE).clamp_max(255) if self.quantize else pixels

    def forward(self, images: Tensor) -> Tensor:
        return self.network(self.preprocess(self.to_pixels(images)))

    def logits(self, images: Tensor) -> Tensor:
        """The 1008 class logits (for the Inception Score)."""
        return self.network.logits(self(images))


class TorchScriptExtractor(FeatureExtractor):
    """A user's network saved with ``torch.jit.save``: images in [-1, 1] -> (N, D) features.

    ``num_features`` comes from the module's ``num_features`` attribute, else from one probe
    on a (1, 3, 64, 64) zero image.
    """

    channels = None

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        path = Path(os.path.expanduser(os.fspath(path)))
        if not path.is_file():
            raise ExtractorError(f"TorchScript extractor file {path} does not exist")
        self.module = load_torchscript(path, ExtractorError, "save the extractor with "
                                       "torch.jit.save(torch.jit.script(module), path)")
        self.path = path
        self.identity = f"torchscript:{file_sha256(path)[:8]}:{path.name}"
        self.num_features = probe_width(self.module, path, ExtractorError, attribute="num_features",
                                        meaning="feature size", what="extractor", output="(N, D) features", dims=2)

    def forward(self, images: Tensor) -> Tensor:
        return self.module(images)


# ----------------------------------------------------------------------------- registry

ExtractorFactory = Callable[..., FeatureExtractor]
_EXTRACTORS: Registry[ExtractorFactory] = Registry("feature extractor", ExtractorError,
                                                   hint=", or give the path of a TorchScript file")


def register_extractor(name: str) -> Callable[[ExtractorFactory], ExtractorFactory]:
    """Decorator adding a factory (keyword options -> :class:`FeatureExtractor`) under ``name``."""
    return _EXTRACTORS.register(name)


def list_extractors() -> list[str]:
    return _EXTRACTORS.names()


def create_extractor(name: str, **options: Any) -> FeatureExtractor:
    """The registered extractor ``name`` built with ``options`` (checked against its factory's signature)."""
    factory = _EXTRACTORS.get(name)
    parameters = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = sorted(k for k in options if k not in parameters and not takes_any)
    if unknown:
        allowed = ", ".join(p for p in parameters if parameters[p].kind is not inspect.Parameter.VAR_KEYWORD)
        raise ExtractorError(f"feature extractor {name!r} takes no option(s) {', '.join(unknown)}; "
                             f"allowed: {allowed or 'none'}")
    return factory(**options)


# the weight file each built-in extractor reads (checked up front by check_extractor_inputs)
EXTRACTOR_WEIGHTS: dict[str, WeightsSpec] = {"inception": INCEPTION_WEIGHTS, "inception-pytorch-fid": INCEPTION_WEIGHTS}


def check_extractor_inputs(spec: str = "inception", weights: str | os.PathLike | None = None) -> None:
    """Refuse up front, without loading a network, what :func:`load_extractor` would refuse for want of a file:
    an unknown name, a TorchScript path that is missing or not TorchScript, Inception weights not on this
    machine or unreadable (:class:`~foundation.errors.WeightsNotFoundError` / ``WeightsFileError``)."""
    if spec in _EXTRACTORS:
        if spec in EXTRACTOR_WEIGHTS:
            _check_readable(find_weights(EXTRACTOR_WEIGHTS[spec], weights))
        elif weights is not None:
            raise ExtractorError(f"feature extractor {spec!r} reads no weights file; give the weights to "
                                 f"{' or '.join(EXTRACTOR_WEIGHTS)}")
        return
    path = Path(os.path.expanduser(spec))
    if path.name in INCEPTION_WEIGHTS.file_names:  # the weights file itself stands for the inception extractor
        _check_readable(find_weights(INCEPTION_WEIGHTS, path))
        return
    if path.suffix in TORCHSCRIPT_SUFFIXES or path.exists():
        if weights is not None:
            raise ExtractorError("a TorchScript extractor reads no Inception weights; give one or the other")
        if not path.is_file():
            raise ExtractorError(f"TorchScript extractor file {path} does not exist")
        if not is_torchscript(archive_members(path, ExtractorError, "TorchScript extractor")):
            raise ExtractorError(f"{path} is not a TorchScript file; save the extractor with "
                                 "torch.jit.save(torch.jit.script(module), path)")
        return
    raise ExtractorError(f"unknown feature extractor {spec!r}: use one of {', '.join(list_extractors())}, or the "
                         f"path of a TorchScript file ({', '.join(TORCHSCRIPT_SUFFIXES)})")


def _check_readable(path: Path) -> None:
    try:
        with open(path, "rb") as file:
            file.read(1)
    except OSError as exc:
        raise WeightsFileError(f"weights file {path} cannot be read ({exc.strerror or exc})") from None


def load_extractor(spec: str, **options: Any) -> FeatureExtractor:
    """``spec``: a registered name (``inception``, with ``weights=PATH`` optional), a path to a
    TorchScript file, or the path of a standard Inception weights file itself."""
    if spec in _EXTRACTORS:
        return create_extractor(spec, **options)
    path = Path(os.path.expanduser(spec))
    if path.name in INCEPTION_WEIGHTS.file_names:
        return create_extractor("inception", **{**options, "weights": path})
    if path.suffix in TORCHSCRIPT_SUFFIXES or path.exists():
        if options:
            raise ExtractorError(f"a TorchScript extractor takes no options, got {', '.join(sorted(options))}")
        return TorchScriptExtractor(path)
    raise ExtractorError(f"unknown feature extractor {spec!r}: use one of {', '.join(list_extractors())}, or the "
                         f"path of a TorchScript file ({', '.join(TORCHSCRIPT_SUFFIXES)})")


@register_extractor("inception")
def inception_extractor(weights: str | os.PathLike | None = None, preprocessing: str = DEFAULT_PREPROCESSING,
                        quantize: bool = True) -> InceptionExtractor:
    """The standard FID Inception; ``weights`` found by :func:`evaluators.weights.find_inception_weights`."""
    return InceptionExtractor(load_fid_inception(find_inception_weights(weights)), preprocessing, quantize)


@register_extractor("inception-pytorch-fid")
def inception_pytorch_fid_extractor(weights: str | os.PathLike | None = None,
                                    quantize: bool = True) -> InceptionExtractor:
    """The FID Inception with pytorch-fid's resize, as GAN Compression's published FIDs were computed."""
    return inception_extractor(weights, preprocessing="pytorch-fid", quantize=quantize)
