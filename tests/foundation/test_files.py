"""Atomic writes: the destination holds the old bytes or the new ones, and nothing else is left behind."""
import os

import pytest

from foundation.files import atomic_path, atomic_write_bytes, atomic_write_text


def test_write_bytes_and_text_create_folders_and_replace(tmp_path):
    path = tmp_path / "deep" / "folder" / "data.bin"
    assert atomic_write_bytes(path, b"one") == path and path.read_bytes() == b"one"
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    text = atomic_write_text(tmp_path / "note.txt", "héllo\n")
    assert text.read_text(encoding="utf-8") == "héllo\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep", "note.txt"]
    assert os.listdir(path.parent) == ["data.bin"]


def test_a_writer_that_raises_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half of the new")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.pt"]
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "never.pt") as tmp:
            raise RuntimeError("before writing")
    assert os.listdir(tmp_path) == ["model.pt"]


def test_the_temporary_is_hidden_beside_the_destination_and_unique(tmp_path):
    path = tmp_path / "subnet.onnx"
    seen = []
    for keep_suffix in (False, True):
        with atomic_path(path, keep_suffix=keep_suffix) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp != path
            assert tmp.suffix == (".onnx" if keep_suffix else ".tmp")
            assert not path.exists() or path.read_bytes() == b"first"  # the old file is intact meanwhile
            tmp.write_bytes(b"first")
            seen.append(tmp)
    assert seen[0] != seen[1] and os.listdir(tmp_path) == ["subnet.onnx"]


def test_a_file_written_by_name_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = atomic_write_bytes(tmp_path / "shared.json", b"{}")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
