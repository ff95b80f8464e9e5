"""Generators from other implementations' checkpoints: loaded as is, by structure, or by a mapping file.

A plain state dict (found inside its wrapper by :mod:`supernet.wrappers`) loads as is when its keys
are ganas's (pytorch-CycleGAN-and-pix2pix, GAN Compression); otherwise by the order and shapes of its
tensors (:mod:`supernet.structure`); or by a mapping file a user writes or an earlier import saved.
The result records the architecture, hyper-parameters and key mapping found, so that later loads of
the same file (a search worker's, finalize's) repeat the import exactly instead of searching again.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from foundation.errors import GanasError
from foundation.files import atomic_write_text
from foundation.tensorfiles import natural_key

from .errors import CheckpointError
from .generators import ChannelGenerator
from .registry import create_generator, get_architecture
from .structure import OPTIONAL, Candidate, Fit, best, candidates, describe_generator, fit_by_name, fit_by_order, \
    get_family_shape, layers_of
from .wrappers import unwrap_state_dict

MAP_FORMAT = "ganas.teacher-map/1"
KeyMap = dict[str, "str | None"]  # checkpoint key -> ganas key; None: left out


@dataclass(frozen=True)
class ImportedGenerator:
    """A generator loaded from a foreign state dict, and how: enough to load the same file the same way again."""

    generator: ChannelGenerator
    arch: str
    hparams: dict
    key_map: KeyMap | None  # None: the keys are ganas's as they are, and all of them are used
    method: str  # "as is", "by structure", "by the mapping in FILE"
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        return describe_generator(self.arch, self.hparams)

    def report(self, source: str) -> list[str]:
        """What a command prints: how the file loaded and, when keys changed, every old key -> new key."""
        lines = [f"teacher {source}: loaded {self.method} as {self.describe()}"]
        lines += [f"  ({note})" for note in self.notes]
        if self.method == "by structure":  # equal shapes do not prove an equal computation
            lines.append("  (matched by the order and shapes of its tensors; unless its implementation is one "
                         "docs/teachers.md lists as tested, compare a few of its images with the original's)")
        return lines + key_map_lines(self.key_map)

    def map_record(self) -> dict[str, Any]:
        """The mapping file :func:`write_key_map` saves (``--teacher-map`` reads it back)."""
        mapping = self.key_map or {k: k for k in self.generator.state_dict()}
        return {"format": MAP_FORMAT, "arch": self.arch, "hparams": dict(self.hparams), "mapping": mapping}


def key_map_lines(key_map: Mapping[str, str | None] | None) -> list[str]:
    """``old -> new`` for every key a mapping renames or leaves out (nothing when there is no mapping)."""
    if not key_map:
        return []
    renamed = [(old, new) for old, new in key_map.items() if old != new]
    kept = len(key_map) - len(renamed)
    lines = [f"  checkpoint key -> ganas key ({len(renamed)} renamed or left out"
             + (f", {kept} unchanged" if kept else "") + "):"]
    return lines + [f"  {old} -> {new if new is not None else '(left out)'}" for old, new in renamed]


@dataclass(frozen=True)
class MappingFile:
    """A mapping given by hand: checkpoint key -> ganas key (None leaves a tensor out), and optionally the
    architecture and hyper-parameters it maps to (read off the tensors when absent)."""

    mapping: KeyMap
    arch: str | None = None
    hparams: dict = field(default_factory=dict)
    source: str = "the mapping"


def import_generator(saved: Any, source: str, arch: str | None = None, hparams: Mapping[str, Any] | None = None,
                     key_map: MappingFile | None = None) -> ImportedGenerator:
    """The generator in ``saved`` (what ``torch.load`` returned for ``source``), a plain state dict in any
    supported wrapper: by ``key_map`` when given, else as is or by structure. ``arch`` and ``hparams``
    narrow what it may be; the rest is read off its tensors."""
    unwrapped = unwrap_state_dict(saved, source)
    if key_map is not None:
        return _by_mapping(unwrapped.state, source, arch, hparams, key_map, unwrapped.notes)
    every_layer = layers_of(unwrapped.state)
    layers = [layer for layer in every_layer if not layer.is_stats_only]
    found, excluded = _candidates(layers, source, arch, hparams)
    fit = best([_fit(lambda c: fit_by_order(every_layer if _keeps_stats(c) else layers, c), c) for c in found],
               source, excluded)
    left_out = {} if _keeps_stats(fit.candidate) else {
        key: None for layer in every_layer if layer.is_stats_only for key in map(layer.key, dict(layer.tensors))}
    renamed = {new: unwrapped.state[old] for old, new in fit.pairs}
    generator = _load(fit.candidate, renamed, source)
    as_is = all(old == new for old, new in fit.pairs)
    key_map_used = None if as_is and not left_out else {**dict(fit.pairs), **left_out}
    notes = unwrapped.notes + ((f"{len(left_out)} InstanceNorm running statistics left out, as PyTorch >= 0.4 "
                                "keeps none",) if left_out else ()) + _assumed(fit.candidate, hparams)
    return ImportedGenerator(generator, fit.candidate.arch, dict(fit.candidate.hparams), key_map_used,
                             "as is" if as_is else "by structure", notes)


def _keeps_stats(candidate: Candidate) -> bool:
    """Whether layers of running statistics alone are the candidate's own (SPADE's parameter-free BatchNorm),
    not a pre-0.4 InstanceNorm's to leave out."""
    return get_family_shape(get_architecture(candidate.arch).family).stats_only_norms


def _assumed(candidate: Candidate, fixed: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The family's notes on hyper-parameters its tensors cannot tell (SPADE's normal vs more)."""
    given = {k: v for k, v in (fixed or {}).items() if v is not None}
    return get_family_shape(get_architecture(candidate.arch).family).assumed(candidate.hparams, given)


def _candidates(layers, source: str, arch: str | None, hparams: Mapping[str, Any] | None
                ) -> tuple[list[Candidate], list[str]]:
    try:
        return candidates(layers, arch, hparams)
    except GanasError as exc:
        raise CheckpointError(f"{source}: {exc}") from None


def _fit(compare, candidate: Candidate) -> Fit:
    """``compare(candidate)``; a candidate ganas cannot build (an impossible depth, say) fits nothing."""
    try:
        return compare(candidate)
    except GanasError as exc:
        return Fit(candidate, -1, str(exc))


def _by_mapping(state: dict[str, torch.Tensor], source: str, arch: str | None, hparams: Mapping[str, Any] | None,
                mapping: MappingFile, notes: tuple[str, ...]) -> ImportedGenerator:
    unmapped = [key for key in state if key not in mapping.mapping]
    if unmapped:
        more = f" (nor for {len(unmapped) - 1} more)" if len(unmapped) > 1 else ""
        raise CheckpointError(f"{mapping.source} gives no ganas key for {source}'s {unmapped[0]}{more}; map every "
                              "tensor, or map it to null to leave it out")
    absent = [key for key in mapping.mapping if key not in state]
    if absent:
        raise CheckpointError(f"{mapping.source} maps {absent[0]}, which {source} does not hold (after "
                              f"{'; '.join(notes) or 'reading it'})")
    renamed: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for old, new in mapping.mapping.items():
        if new is None:
            continue
        if new in renamed:
            raise CheckpointError(f"{mapping.source} maps both {origin[new]} and {old} to {new}")
        renamed[new], origin[new] = state[old], old
    renamed = {key: renamed[key] for key in sorted(renamed, key=natural_key)}  # ganas's module order
    fixed = {**mapping.hparams, **(hparams or {})}
    found, excluded = _candidates(layers_of(renamed), source, arch or mapping.arch, fixed)
    fit = best([_fit(lambda c: fit_by_name(renamed, c, lambda k: f"{origin[k]} -> {k}"), c) for c in found],
               f"{source} mapped by {mapping.source}", excluded)
    generator = _load(fit.candidate, renamed, source)
    return ImportedGenerator(generator, fit.candidate.arch, dict(fit.candidate.hparams), dict(mapping.mapping),
                             f"by the mapping in {mapping.source}", notes)


def _load(candidate: Candidate, state: dict[str, torch.Tensor], source: str) -> ChannelGenerator:
    """The candidate built for real, with the state its fit has already checked key by key and shape by shape."""
    try:
        generator = create_generator(candidate.arch, **candidate.hparams)
    except GanasError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    counters = {key: value for key, value in generator.state_dict().items()
                if key.rpartition(".")[2] == OPTIONAL and key not in state}  # a checkpoint may predate them
    generator.load_state_dict({**state, **counters}, strict=True)
    return generator


# -- mapping files --------------------------------------------------------------------------------------------

def read_key_map(path: str | os.PathLike) -> MappingFile:
    """A mapping file: ``{"mapping": {"checkpoint key": "ganas key" or null, ...}}``, optionally with the
    ``arch`` and ``hparams`` it maps to (as ``--save-teacher-map`` writes it)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"mapping file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"mapping file {path} is not JSON ({exc})") from None
    mapping = data.get("mapping") if isinstance(data, dict) else None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str))
                                                for k, v in mapping.items()):
        raise CheckpointError(f'mapping file {path} must hold {{"mapping": {{"checkpoint key": "ganas key" or null, '
                              '...}}, as --save-teacher-map writes it')
    arch, hparams = data.get("arch"), data.get("hparams") or {}
    if not (arch is None or isinstance(arch, str)) or not isinstance(hparams, dict):
        raise CheckpointError(f"mapping file {path}: 'arch' must be an architecture name and 'hparams' an object")
    return MappingFile(dict(mapping), arch, dict(hparams), str(path))


def write_key_map(path: str | os.PathLike, imported: ImportedGenerator) -> Path:
    return atomic_write_text(path, json.dumps(imported.map_record(), indent=2) + "\n")
