"""Dataset identity: a content hash over file names and file bytes.

The hash of a set of files is SHA-256 over the sorted lines ``relative/path <TAB> size <TAB>
sha256(bytes)``. It depends on names and contents only, never on mtimes, so copying a dataset
keeps its identity and editing one pixel changes it. Per-file digests are memoised within the
process on (path, size, mtime_ns, inode), so hashing the same unchanged split twice reads it once.
As in git's "racy clean" rule, a file modified less than two seconds before it was hashed is not
memoised: timestamps are coarse, and a rewrite within the same tick must not reuse a stale digest.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from foundation.hashing import bytes_sha256, file_sha256

from .errors import DatasetError

_RACY_SECONDS = 2.0
_FILE_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def file_digest(path: Path) -> str:
    """SHA-256 of the bytes of ``path`` (hex)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file does not exist") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    cached = _FILE_DIGESTS.get(key)
    if cached is not None:
        return cached
    try:
        digest = file_sha256(path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read file ({exc})") from None
    if time.time() - stat.st_mtime > _RACY_SECONDS:
        _FILE_DIGESTS[key] = digest
    return digest


def content_hash(root: Path, relative_paths: Iterable[str]) -> str:
    """The identity of the files ``relative_paths`` (POSIX, relative to ``root``): see the module doc."""
    lines = []
    for relative in sorted(set(relative_paths)):
        path = root / relative
        digest = file_digest(path)
        lines.append(f"{relative}\t{path.stat().st_size}\t{digest}\n")
    return bytes_sha256("".join(lines))
