"""Teacher kinds: what a ``--teacher`` file may be, told apart by its content, and how each kind loads.

A file is recognised by its bytes, never by its name: the kinds are asked in registration order and the
first that recognises the file loads it. A checkpoint (a ganas checkpoint or another implementation's
state dict) loads weights only (:mod:`foundation.tensorfiles`); the program kinds load a program that
ganas runs as it is (:mod:`supernet.programs`). Every later load of the same file (a search worker's,
finalize's) names the kind it was recorded with, and is refused if the file is no longer of that kind.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from torch import nn

from foundation.registry import Registry
from foundation.tensorfiles import SAFETENSORS_SUFFIX, check_crcs, read_tensor_bytes

from .errors import CheckpointError
from .programs import (ProgramGenerator, load_exported_program, load_onnx_program, load_torchscript_program,
                       looks_like_onnx, looks_like_pt2, looks_like_torchscript)


@dataclass(frozen=True)
class TeacherFile:
    """What detection looks at: the bytes, and the member names when they are a zip archive."""

    data: bytes
    source: str
    zip_names: frozenset[str] | None

    @classmethod
    def of(cls, data: bytes, source: str) -> "TeacherFile":
        names = None
        if zipfile.is_zipfile(io.BytesIO(data)):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    names = frozenset(archive.namelist())
            except zipfile.BadZipFile:
                names = None
        return cls(data, source, names)


@dataclass(frozen=True)
class TeacherOptions:
    """How a state dict is read (``--teacher-arch``, ``--teacher-ngf``, ``--teacher-map``); programs take none."""

    arch: str | None = None
    hparams: Mapping[str, Any] = field(default_factory=dict)
    key_map: Any = None  # a supernet.foreign.MappingFile, or the dict an earlier import recorded

    @property
    def given(self) -> bool:
        return self.arch is not None or bool(self.hparams) or self.key_map is not None


@dataclass(frozen=True)
class LoadedTeacher:
    """A teacher network (eval mode) and how it loaded."""

    generator: nn.Module  # a ChannelGenerator, or a ProgramGenerator
    kind: str
    meta: dict = field(default_factory=dict)  # a ganas checkpoint's meta
    imported: Any = None  # supernet.foreign.ImportedGenerator, for another implementation's state dict

    @property
    def is_program(self) -> bool:
        return isinstance(self.generator, ProgramGenerator)

    def report(self, source: str) -> list[str]:
        """What a command prints of how the teacher loaded (nothing for a ganas checkpoint)."""
        if self.imported is not None:
            return self.imported.report(source)
        if self.is_program:
            return [f"teacher {source}: {self.generator.describe()}"]
        return []


@dataclass(frozen=True)
class TeacherKind:
    name: str
    description: str  # what the file is, for messages and docs
    detect: Callable[[TeacherFile], bool]
    load: Callable[[TeacherFile, TeacherOptions], LoadedTeacher]


_KINDS: Registry[TeacherKind] = Registry("teacher kind", CheckpointError, sort=False, key="name")
register_teacher_kind, list_teacher_kinds, get_teacher_kind = _KINDS.add, _KINDS.names, _KINDS.get


def detect_teacher_kind(file: TeacherFile) -> TeacherKind:
    """The first registered kind that recognises ``file``; a file of no kind is refused, naming them all."""
    for kind in _KINDS.values():
        if kind.detect(file):
            return kind
    kinds = "; ".join(kind.description for kind in _KINDS.values())
    raise CheckpointError(f"{file.source} is none of the teacher files ganas reads ({kinds}); it starts with bytes "
                          f"{file.data[:8].hex(' ')}. See docs/teachers.md")


def load_teacher(data: bytes, source: str, options: TeacherOptions | None = None,
                 kind: str | None = None) -> LoadedTeacher:
    """The teacher in ``data`` (the bytes of ``source``), in eval mode; ``kind``: the kind it was recorded as."""
    options = options or TeacherOptions()
    file = TeacherFile.of(data, source)
    found = detect_teacher_kind(file)
    if kind is not None and found.name != kind:
        raise CheckpointError(f"{source} was recorded as a {kind} teacher but is now {found.description}; give the "
                              "original file, or register the supernet again with --teacher FILE")
    loaded = found.load(file, options)
    loaded.generator.eval()
    return loaded


# -- the kinds ---------------------------------------------------------------------------------------------

def _is_checkpoint(file: TeacherFile) -> bool:
    """A torch.save archive (zip with ``data.pkl``, or the legacy pickle format) or a safetensors file."""
    if file.zip_names is not None:
        return any(n.rsplit("/", 1)[-1] == "data.pkl" for n in file.zip_names)
    from foundation.tensorfiles import looks_like_safetensors

    return file.data[:1] == b"\x80" or file.source.endswith(SAFETENSORS_SUFFIX) or looks_like_safetensors(file.data)


def _load_checkpoint(file: TeacherFile, options: TeacherOptions) -> LoadedTeacher:
    from .checkpoint import FORMAT, generator_from_record, import_plain

    state = read_tensor_bytes(file.data, file.source, CheckpointError)
    if isinstance(state, dict) and state.get("format") == FORMAT:
        generator, meta, imported = generator_from_record(state, file.source), dict(state.get("meta") or {}), None
    else:
        imported = import_plain(state, file.source, options.arch, options.key_map, **dict(options.hparams))
        generator, meta = imported.generator, {}
    if generator.elastic:
        raise CheckpointError(f"{file.source} holds a supernet, not a teacher")
    return LoadedTeacher(generator, "checkpoint", meta, imported)


def _program_loader(load: Callable[[bytes, str], ProgramGenerator], kind: str):
    def load_program(file: TeacherFile, options: TeacherOptions) -> LoadedTeacher:
        if options.given:
            raise CheckpointError(f"{file.source} is a {_KINDS.get(kind).description}: it runs as it is, so "
                                  "--teacher-arch, --teacher-ngf and --teacher-map (which describe a state dict) do "
                                  "not apply; drop them")
        if file.zip_names is not None:  # an archive whose bytes changed after it was written is refused first
            check_crcs(file.data, file.source, CheckpointError)
        return LoadedTeacher(load(file.data, file.source), kind)
    return load_program


def _zip_with(test: Callable[[frozenset[str]], bool]) -> Callable[[TeacherFile], bool]:
    return lambda file: file.zip_names is not None and test(file.zip_names)


register_teacher_kind(TeacherKind("torchscript", "TorchScript program (torch.jit.save)",
                                  _zip_with(looks_like_torchscript),
                                  _program_loader(load_torchscript_program, "torchscript")))
register_teacher_kind(TeacherKind("torch.export", "torch.export archive (.pt2, torch.export.save)",
                                  _zip_with(looks_like_pt2), _program_loader(load_exported_program, "torch.export")))
register_teacher_kind(TeacherKind("checkpoint", "checkpoint of weights (a ganas checkpoint or a generator state "
                                                "dict: .pth/.pt/.ckpt/.safetensors)", _is_checkpoint,
                                  _load_checkpoint))
register_teacher_kind(TeacherKind("onnx", "ONNX model (.onnx)", lambda file: looks_like_onnx(file.data),
                                  _program_loader(load_onnx_program, "onnx")))
