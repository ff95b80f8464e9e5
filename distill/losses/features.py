"""Intermediate features by module name, and what layer-wise distillers share.

Distilled layers are chosen by name (``generator.distill_layer_names()``), never by hard-coded
index: :class:`FeatureTap` records the outputs of named modules with forward hooks, and
:class:`DistillLayer` pairs a student layer with a teacher layer and their widths. A teacher that
accepts no hooks (a TorchScript or torch.export program) gives its features itself, through
``forward_with_features(x, names)``: :func:`run_with_features` takes either way.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import torch
from torch import nn

from supernet.elastic_ops import ElasticConv2d

from .errors import FeatureMismatchError


class FeatureTap:
    """Records the output of each named module of ``module`` on every forward pass.

    ``features[name]`` holds the latest output (a clone by default, so an in-place op that
    follows the module, like U-Net's ``ReLU(inplace=True)`` after a skip block, cannot change
    what was recorded; gradients still flow). Use as a context manager or call :meth:`close`
    to remove the hooks.
    """

    def __init__(self, module: nn.Module, names: Iterable[str], clone: bool = True):
        self.names = list(names)
        modules = dict(module.named_modules())
        unknown = [n for n in self.names if n not in modules]
        if unknown:
            available = [n for n in modules if n][:12]
            raise FeatureMismatchError(
                f"no module named {', '.join(map(repr, unknown))} in {type(module).__name__}; names look like "
                f"{', '.join(available)}{', ...' if len(modules) > 13 else ''}"
            )
        self.clone = clone
        self.features: dict[str, torch.Tensor] = {}
        self._handles = [modules[n].register_forward_hook(self._hook(n)) for n in self.names]

    def _hook(self, name: str):
        def record(_module, _inputs, output):
            if not isinstance(output, torch.Tensor):
                raise FeatureMismatchError(f"module {name!r} returns {type(output).__name__}, not a tensor")
            self.features[name] = output.clone() if self.clone else output
        return record

    def clear(self) -> None:
        self.features.clear()

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.features.clear()

    def __enter__(self) -> "FeatureTap":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_with_features(module: nn.Module, x: torch.Tensor, names: Sequence[str]
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``module(x)`` and the output of each named layer: from the module itself when it gives them
    (``forward_with_features``, a program teacher), else recorded by forward hooks."""
    own = getattr(module, "forward_with_features", None)
    if callable(own):
        return own(x, names)
    with FeatureTap(module, names) as tap:
        out = module(x)
        return out, dict(tap.features)


@dataclass(frozen=True)
class DistillLayer:
    """A student layer distilled towards a teacher layer.

    ``student_channels`` is the student's full (supernet) width; a narrower subnet's feature
    uses the mapping's first input channels. ``concat_halves`` marks a feature that is
    ``cat([a, b])`` of two equal halves (U-Net skip outputs): a narrower one uses the first
    channels of each half.
    """

    student: str
    teacher: str
    student_channels: int
    teacher_channels: int
    concat_halves: bool = False

    def __post_init__(self):
        if self.student_channels <= 0 or self.teacher_channels <= 0:
            raise FeatureMismatchError(f"distilled layer {self.student!r} needs positive widths, got "
                                       f"{self.student_channels} -> {self.teacher_channels}")
        if self.concat_halves and self.student_channels % 2:
            raise FeatureMismatchError(f"layer {self.student!r} is a concatenation of halves but has an odd "
                                       f"width {self.student_channels}")


def probe_layers(student: nn.Module, teacher: nn.Module, names: Sequence[str], example: torch.Tensor,
                 teacher_names: Sequence[str] | None = None,
                 concat_halves: bool | Sequence[bool] = False) -> list[DistillLayer]:
    """The :class:`DistillLayer` list for ``names``, widths read from one no-grad forward of ``example``.

    Run it with the student at full width (a supernet outside any ``configured`` block).
    """
    teacher_names = list(teacher_names) if teacher_names is not None else list(names)
    if len(teacher_names) != len(names):
        raise FeatureMismatchError(f"{len(names)} student layers but {len(teacher_names)} teacher layers")
    halves = [concat_halves] * len(names) if isinstance(concat_halves, bool) else list(concat_halves)
    if len(halves) != len(names):
        raise FeatureMismatchError(f"{len(names)} layers but {len(halves)} concat_halves flags")
    with torch.no_grad(), FeatureTap(student, names, clone=False) as s:
        modes = [(net, net.training) for net in (student, teacher)]
        try:
            student.eval()(example)
            _, teacher_features = run_with_features(teacher.eval(), example, teacher_names)
        finally:
            for net, mode in modes:
                net.train(mode)
        return [DistillLayer(sn, tn, s.features[sn].shape[1], _width(teacher_features[tn], tn), h)
                for sn, tn, h in zip(names, teacher_names, halves)]


def _width(feature, name: str) -> int:
    if not isinstance(feature, torch.Tensor) or feature.dim() != 4:
        shape = tuple(feature.shape) if isinstance(feature, torch.Tensor) else type(feature).__name__
        raise FeatureMismatchError(f"teacher layer {name!r} gives {shape}, not a feature map (N, C, H, W); name a "
                                   "convolutional layer or block")
    return int(feature.shape[1])


def elastic_mapping(layer: DistillLayer, bias: bool) -> ElasticConv2d:
    """A 1x1 conv student width -> teacher width, elastic on its input."""
    return ElasticConv2d(layer.student_channels, layer.teacher_channels, 1, bias=bias,
                         concat_halves=layer.concat_halves)


class LayerwiseDistiller(nn.Module, ABC):
    """Per distilled layer: a learned mapping of the student feature and a loss against the teacher's.

    Subclasses build one mapping per layer (:meth:`build_mapping`) and define the per-layer
    loss (:meth:`layer_loss`); the total is the sum over layers. The teacher side is detached:
    gradients reach the student and the mappings, never the teacher.
    """

    same_spatial_size = True  # False: only (N, C) must agree (losses on pooled features)

    def __init__(self, layers: Sequence[DistillLayer]):
        super().__init__()
        if not layers:
            raise FeatureMismatchError("a distiller needs at least one distilled layer")
        self.layers = tuple(layers)
        self.mappings = nn.ModuleList(self.build_mapping(layer) for layer in self.layers)

    @abstractmethod
    def build_mapping(self, layer: DistillLayer) -> nn.Module:
        """The learned mapping of ``layer``'s student feature."""

    @abstractmethod
    def layer_loss(self, mapped: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """The loss of one layer: mapped student feature vs (detached) teacher feature."""

    def layer_losses(self, student_features: Mapping[str, torch.Tensor],
                     teacher_features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One loss per distilled layer, keyed by the student layer's name."""
        losses = {}
        for layer, mapping in zip(self.layers, self.mappings):
            s, t = self._pair(layer, student_features, teacher_features)
            mapped = mapping(s)
            compared = slice(None) if self.same_spatial_size else slice(0, 2)
            if mapped.shape[compared] != t.shape[compared]:
                raise FeatureMismatchError(f"layer {layer.student!r}: mapped student feature {tuple(mapped.shape)} "
                                           f"vs teacher feature {tuple(t.shape)}")
            losses[layer.student] = self.layer_loss(mapped, t.detach())
        return losses

    def forward(self, student_features: Mapping[str, torch.Tensor],
                teacher_features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack(list(self.layer_losses(student_features, teacher_features).values())).sum()

    @staticmethod
    def _pair(layer: DistillLayer, student_features, teacher_features) -> tuple[torch.Tensor, torch.Tensor]:
        for side, name, features in (("student", layer.student, student_features),
                                     ("teacher", layer.teacher, teacher_features)):
            if name not in features:
                raise FeatureMismatchError(f"no {side} feature {name!r} recorded; have {sorted(features)} "
                                           "(was the FeatureTap attached and the network run?)")
        s = student_features[layer.student]
        if s.dim() != 4 or s.shape[1] > layer.student_channels or (layer.concat_halves and s.shape[1] % 2):
            raise FeatureMismatchError(
                f"student feature {layer.student!r} has shape {tuple(s.shape)}; the mapping takes (N, C, H, W) "
                f"with C <= {layer.student_channels}{' and even' if layer.concat_halves else ''}"
            )
        return s, teacher_features[layer.teacher]
