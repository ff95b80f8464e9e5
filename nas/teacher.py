"""The teacher as the reference: the generator a supernet was distilled from, recorded, verified, measured.

A supernet's record keeps its teacher (file, relative to the workspace when inside it, SHA-256, kind,
architecture, MACs and parameters at the supernet's resolution); a search evaluates it once with the
search's own evaluator, and finalize on the held-out split, so that every figure of a subnet is shown
next to the teacher's. A program teacher (TorchScript, torch.export, ONNX) is recorded by its kind; its
architecture is that kind.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from supernet.errors import CheckpointError

from .workspace import Workspace, recorded_path


class TeacherChangedError(CheckpointError):
    """The teacher file recorded with a supernet is missing, or is no longer the file that was recorded."""


@dataclass(frozen=True)
class TeacherInfo:
    """A supernet's teacher as the store records it."""

    path: str
    sha256: str
    architecture: str
    hparams: Mapping[str, Any] = field(default_factory=dict)
    reference_arch: str | None = None  # set for a plain state dict (another implementation's)
    macs: int = 0  # at the supernet's resolution (MACs in the papers' convention)
    params: int = 0
    size: tuple[int, int] = (256, 256)
    key_map: Mapping[str, str | None] | None = None  # a plain state dict's keys -> ganas's, when they differ
    kind: str = "checkpoint"  # supernet.teachers: checkpoint, torchscript, torch.export or onnx

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hparams"], data["size"] = dict(self.hparams), list(self.size)
        data["key_map"] = dict(self.key_map) if self.key_map is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "TeacherInfo | None":
        if not data:
            return None
        values = dict(data)
        values["size"] = tuple(values.get("size") or (256, 256))
        values["hparams"] = dict(values.get("hparams") or {})
        return cls(**values)

    def recorded(self, workspace: Workspace | None) -> "TeacherInfo":
        """This teacher as the store records it: its path relative to ``workspace`` when inside it."""
        return replace(self, path=recorded_path(self.path, workspace))

    def read_bytes(self, workspace: Workspace) -> bytes:
        """The teacher file's bytes (its recorded path in ``workspace``), refused unless it is still the file
        recorded at registration and intact."""
        from foundation.hashing import bytes_sha256
        from foundation.tensorfiles import check_crcs

        path = workspace.absolute(self.path)
        if not path.is_file():
            raise TeacherChangedError(f"the teacher {path} recorded with this supernet is missing (moved or "
                                      "deleted); put it back, or register the supernet again with --teacher FILE")
        data = path.read_bytes()
        if bytes_sha256(data) != self.sha256:
            raise TeacherChangedError(f"the teacher {path} changed since the supernet was registered (its SHA-256 "
                                      f"is no longer {self.sha256[:12]}...); restore that file, or register the "
                                      "supernet again with --teacher FILE")
        check_crcs(data, str(path), TeacherChangedError)
        return data

    def check(self, data: bytes) -> bytes:
        """``data`` if it is the recorded teacher (bytes that travelled to a worker), else TeacherChangedError."""
        from foundation.hashing import bytes_sha256

        if bytes_sha256(data) != self.sha256:
            raise TeacherChangedError(f"teacher bytes do not match the recorded SHA-256 {self.sha256[:12]}...")
        return data

    def load(self, data: bytes):
        """The teacher (eval mode), from ``data`` (:meth:`read_bytes`, maybe sent to a worker), verified and loaded
        as recorded."""
        return self.open(data).generator

    def open(self, data: bytes):
        """As :meth:`load`, with how it loaded (``supernet.teachers.LoadedTeacher``: a checkpoint's meta)."""
        from supernet.teachers import TeacherOptions, load_teacher

        options = TeacherOptions(self.reference_arch, dict(self.hparams), self.key_map) \
            if self.kind == "checkpoint" else None
        return load_teacher(self.check(data), self.path, options, self.kind)


def describe_teacher(path: str | Path, size: Sequence[int], reference_arch: str | None = None,
                     hparams: Mapping[str, Any] | None = None, expected_sha256: str | None = None,
                     key_map: Any = None, input_nc: int | None = None, output_nc: int | None = None) -> TeacherInfo:
    """Load a teacher file once and record what a supernet keeps of it (with its MACs and parameters).

    A plain state dict is imported (``reference_arch``, ``hparams`` and ``key_map`` narrow or fix how:
    see :mod:`supernet.foreign`); the record keeps what the import found, so loads repeat it exactly. A
    program is run once at ``size`` with ``input_nc`` channels and must return ``output_nc`` (the supernet's).
    """
    from foundation.hashing import bytes_sha256
    from supernet.teachers import TeacherOptions, load_teacher

    path = Path(path).resolve()
    if not path.is_file():
        raise TeacherChangedError(f"teacher checkpoint {path} does not exist")
    data = path.read_bytes()
    sha = bytes_sha256(data)
    if expected_sha256 is not None and sha != expected_sha256:
        raise TeacherChangedError(f"the teacher {path} changed since the supernet was trained from it (SHA-256 "
                                  f"{sha[:12]}... instead of {expected_sha256[:12]}...); give the original file "
                                  "with --teacher")
    height, width = int(size[0]), int(size[1])
    loaded = load_teacher(data, str(path), TeacherOptions(reference_arch, dict(hparams or {}), key_map))
    if loaded.is_program:
        count = _program_count(loaded.generator, str(path), (height, width), input_nc, output_nc)
        return TeacherInfo(str(path), sha, loaded.kind, dict(loaded.generator.hparams()), None, count.macs,
                           count.params, (height, width), None, loaded.kind)
    from evaluators.closed_form import closed_form_count

    generator, imported = loaded.generator, loaded.imported
    _check_channels(generator, str(path), input_nc, output_nc)
    count = closed_form_count(generator.arch, tuple(generator.config), (height, width), **generator.hparams())
    return TeacherInfo(str(path), sha, generator.arch, dict(generator.hparams()), imported and imported.arch,
                       count.macs, count.params, (height, width), imported and imported.key_map, loaded.kind)


def _check_channels(generator, source: str, input_nc: int | None, output_nc: int | None) -> None:
    """A state-dict teacher must map the supernet's input channels to its output channels."""
    for side, want in (("input", input_nc), ("output", output_nc)):
        have = getattr(generator, f"{side}_nc", None)
        if want is not None and have is not None and have != want:
            what = (" (a one-hot label map: the labels, + dontcare, + the instance edge channel, as SPADE's "
                    "--label-nc, --contain-dontcare and --no-instance set it)"
                    if side == "input" and generator.takes_label_maps else "")
            raise CheckpointError(f"teacher {source} takes {have} {side} channels{what}; the supernet {want}: give "
                                  "the teacher trained on the supernet's data")


def _program_count(program, source: str, size: tuple[int, int], input_nc: int | None, output_nc: int | None):
    """The program's MACs at ``size``, after checking that it maps the supernet's channels to the supernet's."""
    import torch

    from evaluators.program_macs import count_program

    program.check_input_size(*size)
    example = torch.zeros(1, input_nc or program.input_nc or 3, *size)
    with torch.no_grad():
        out = program(example)
    if output_nc is not None and out.shape[1] != output_nc:
        raise CheckpointError(f"teacher {source} returns {out.shape[1]}-channel images for {tuple(example.shape)}, "
                              f"but the supernet makes {output_nc}-channel ones: it is not this supernet's teacher")
    return count_program(program, size, example.shape[1])
