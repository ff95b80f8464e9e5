"""SHA-256 of files (streamed) and bytes agree with hashlib."""
import hashlib

from foundation import hashing
from foundation.hashing import bytes_sha256, file_sha256


def test_bytes_and_text_digests_match_hashlib():
    assert bytes_sha256(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert bytes_sha256(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert bytes_sha256("héllo") == hashlib.sha256("héllo".encode()).hexdigest()


def test_file_digest_is_streamed_and_matches_hashlib(tmp_path, monkeypatch):
    monkeypatch.setattr(hashing, "CHUNK_BYTES", 7)  # many chunks, the last one partial
    data = bytes(range(256)) * 3
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_sha256(str(path)) == bytes_sha256(data)
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()
