"""The teacher as the reference: the generator a supernet was distilled from, recorded, verified, measured.

A supernet's record keeps its teacher (file, relative to the workspace when inside it, SHA-256,
architecture, MACs and parameters at the supernet's resolution); a search evaluates it once with the
search's own evaluator, and finalize on the held-out split, so that every figure of a subnet is shown
next to the teacher's.
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
        """The teacher generator (eval mode), from ``data`` (:meth:`read_bytes`, maybe sent to a worker), verified."""
        from supernet.checkpoint import generator_from_bytes

        return generator_from_bytes(self.check(data), self.path, self.reference_arch, self.key_map, **dict(self.hparams)).eval()


def describe_teacher(path: str | Path, size: Sequence[int], reference_arch: str | None = None,
                     hparams: Mapping[str, Any] | None = None, expected_sha256: str | None = None,
                     key_map: Any = None) -> TeacherInfo:
    """Load a teacher file once and record what a supernet keeps of it (with its closed-form cost).

    A plain state dict is imported (``reference_arch``, ``hparams`` and ``key_map`` narrow or fix how:
    see :mod:`supernet.foreign`); the record keeps what the import found, so loads repeat it exactly.
    """
    from evaluators.closed_form import closed_form_count
    from foundation.hashing import file_sha256
    from foundation.tensorfiles import read_tensor_file
    from supernet.checkpoint import FORMAT, generator_from_record, import_plain

    path = Path(path).resolve()
    if not path.is_file():
        raise TeacherChangedError(f"teacher checkpoint {path} does not exist")
    sha = file_sha256(path)
    if expected_sha256 is not None and sha != expected_sha256:
        raise TeacherChangedError(f"the teacher {path} changed since the supernet was trained from it (SHA-256 "
                                  f"{sha[:12]}... instead of {expected_sha256[:12]}...); give the original file "
                                  "with --teacher")
    saved = read_tensor_file(path, CheckpointError)
    if isinstance(saved, dict) and saved.get("format") == FORMAT:
        generator, reference_arch, found_map = generator_from_record(saved, str(path)), None, None
    else:
        imported = import_plain(saved, str(path), reference_arch, key_map, **dict(hparams or {}))
        generator, reference_arch, found_map = imported.generator, imported.arch, imported.key_map
    if generator.elastic:
        raise CheckpointError(f"{path} holds a supernet, not a teacher")
    height, width = int(size[0]), int(size[1])
    count = closed_form_count(generator.arch, tuple(generator.config), (height, width), **generator.hparams())
    return TeacherInfo(str(path), sha, generator.arch, dict(generator.hparams()), reference_arch, count.macs,
                       count.params, (height, width), found_map)

