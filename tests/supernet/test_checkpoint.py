"""Checkpoint integrity: torch does not check the CRC-32s of its zip archives; ganas does, on every load."""
import io
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from supernet import create_generator, save_generator
from foundation.tensorfiles import check_crcs
from supernet.checkpoint import generator_from_bytes, load_generator, read_checkpoint
from supernet.errors import CheckpointError


def flip_tensor_bytes(path: Path) -> str:
    """Overwrite four bytes in the middle of the largest tensor of a torch zip checkpoint; returns its member name."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        member = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    name_length, extra_length = struct.unpack("<HH", data[member.header_offset + 26: member.header_offset + 30])
    start = member.header_offset + 30 + name_length + extra_length + member.file_size // 2
    data[start: start + 4] = bytes(b ^ 0xFF for b in data[start: start + 4])
    path.write_bytes(bytes(data))
    return member.filename


def test_overwritten_tensor_bytes_are_refused_by_name(tmp_path):
    torch.manual_seed(0)
    path = save_generator(create_generator("resnet", ngf=8, n_blocks=3), tmp_path / "teacher.pt", kind="teacher")
    intact = path.read_bytes()
    check_crcs(path, str(path), CheckpointError)
    member = flip_tensor_bytes(path)
    torch.load(path, map_location="cpu", weights_only=True)  # torch itself loads the damaged weights silently
    pattern = f"checkpoint {path} is corrupt: its member {member} fails its CRC-32 check"
    with pytest.raises(CheckpointError, match=pattern.replace(".", r"\.")):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match=pattern.replace(".", r"\.")):
        load_generator(path)
    with pytest.raises(CheckpointError, match=f"checkpoint worker copy is corrupt: its member {member} "):
        generator_from_bytes(path.read_bytes(), "worker copy")
    assert generator_from_bytes(intact, "intact").arch == "resnet"


def test_a_legacy_checkpoint_has_no_crcs_and_still_loads(tmp_path):
    generator = create_generator("resnet", ngf=8, n_blocks=3)
    path = tmp_path / "legacy.pth"
    torch.save(generator.state_dict(), path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    check_crcs(path, str(path), CheckpointError)
    assert set(read_checkpoint(path)) == set(generator.state_dict())


def test_a_damaged_archive_is_refused_with_one_message(tmp_path):
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(64)}, buffer)
    data = buffer.getvalue().replace(b"PK\x01\x02", b"XXXX", 1)  # the central directory's first entry
    assert zipfile.is_zipfile(io.BytesIO(data))
    with pytest.raises(CheckpointError, match="checkpoint damaged.pt is a damaged zip archive"):
        check_crcs(data, "damaged.pt", CheckpointError)
    local = buffer.getvalue().replace(b"PK\x03\x04", b"XXXX", 1)  # a member's own header: named like a bad CRC
    with pytest.raises(CheckpointError, match="checkpoint damaged.pt is corrupt: its member archive/data.pkl"):
        check_crcs(local, "damaged.pt", CheckpointError)
