"""SHA-256 digests (hex) of files, streamed so a large checkpoint is never read whole, and of bytes."""
from __future__ import annotations

import hashlib
import os

CHUNK_BYTES = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of the bytes of the file at ``path`` (hex); ``OSError`` as ``open`` raises it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bytes_sha256(data: bytes | str) -> str:
    """The SHA-256 of ``data`` (hex); text is encoded as UTF-8."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()
