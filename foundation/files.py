"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The data goes to a temporary file in the destination's folder (so the rename never crosses a
file system), is flushed to disk, and is renamed over the destination with ``os.replace``. A
writer that raises leaves no temporary file behind and the destination untouched. Temporary
names are hidden, unique per process and call (concurrent writers never share one) and end in
``.tmp``, so a process killed mid-write leaves nothing a ``*.png`` or ``*.pt`` scan would pick up.
Files get the usual permissions (the umask applies), unlike ``tempfile``'s private ones.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Iterator


def _temporary_beside(path: Path, keep_suffix: bool) -> Path:
    unique = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    if keep_suffix:
        return path.with_name(f".{path.stem}.{unique}.tmp{path.suffix}")
    return path.with_name(f".{path.name}.{unique}.tmp")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, keep_suffix: bool = False) -> Iterator[Path]:
    """A temporary path for a writer that takes a file name (``torch.save``, ``Image.save``, an
    exporter); when the block ends without an error the file replaces ``path`` atomically.

    The destination's folder is created if missing. ``keep_suffix``: the temporary name ends in
    the destination's suffix, for writers that choose a format by it (ONNX, ``torch.export``). Usage::

        with atomic_path(checkpoint) as tmp:
            torch.save(record, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_beside(path, keep_suffix)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode(encoding))
