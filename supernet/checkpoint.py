"""Saving and loading generators as self-describing checkpoints (``weights_only=True`` safe)."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from foundation.errors import GanasError
from foundation.files import atomic_path

from .errors import CheckpointError
from .generators import ChannelGenerator
from .registry import create_generator, get_architecture

FORMAT = "ganas.generator/1"


def generator_record(generator: ChannelGenerator) -> dict[str, Any]:
    """Everything needed to rebuild ``generator`` through the registry, plus its weights."""
    return {
        "format": FORMAT,
        "arch": generator.arch,
        "hparams": generator.hparams(),
        "config": list(generator.config),
        "elastic": generator.elastic,
        "state_dict": generator.state_dict(),
    }


def save_generator(generator: ChannelGenerator, path: str | os.PathLike, **meta: Any) -> Path:
    """Write atomically (temp file + rename) so a killed process never leaves half a checkpoint."""
    record = generator_record(generator)
    record["meta"] = meta
    with atomic_path(path) as tmp:
        torch.save(record, tmp)
    return Path(path)


def generator_bytes(generator: ChannelGenerator, **meta: Any) -> bytes:
    """The bytes :func:`save_generator` would write (for results that travel through an object store)."""
    record = generator_record(generator)
    record["meta"] = meta
    buffer = io.BytesIO()
    torch.save(record, buffer)
    return buffer.getvalue()


def check_crcs(checkpoint: bytes | str | os.PathLike, source: str) -> None:
    """Refuse a checkpoint whose bytes changed after it was written.

    ``torch.save`` writes a zip archive that keeps a CRC-32 per member, but ``torch.load`` never checks
    them, so overwritten tensor bytes would load as wrong weights without an error. A legacy (pre-zip)
    torch file has no CRCs to check and passes.
    """
    handle = io.BytesIO(checkpoint) if isinstance(checkpoint, (bytes, bytearray, memoryview)) else checkpoint
    if not zipfile.is_zipfile(handle):
        return
    try:
        with zipfile.ZipFile(handle) as archive:
            corrupt = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"checkpoint {source} is a damaged zip archive ({exc}); restore the file or write it "
                              "again") from None
    if corrupt is not None:
        raise CheckpointError(f"checkpoint {source} is corrupt: its member {corrupt} fails its CRC-32 check (its bytes "
                              "changed after it was written); restore the file or write it again")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    check_crcs(path, str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc})") from None


def generator_from_record(record: dict[str, Any], source: str = "checkpoint") -> ChannelGenerator:
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(
            f"{source} is not a ganas generator checkpoint (format {FORMAT}); for a pytorch-CycleGAN-and-pix2pix "
            "state dict use load_reference_generator / --teacher-arch"
        )
    try:
        generator = create_generator(record["arch"], config=record["config"], elastic=record["elastic"],
                                     **record["hparams"])
    except GanasError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    load_state_dict_checked(generator, record["state_dict"], source)
    return generator


def load_generator(path: str | os.PathLike) -> ChannelGenerator:
    """Rebuild a generator saved by :func:`save_generator`."""
    return generator_from_record(read_checkpoint(path), str(path))


def load_state_dict_checked(generator: ChannelGenerator, state_dict: dict, source: str) -> None:
    """Strict load whose error names the missing, unexpected and mis-shaped keys."""
    own = generator.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} keys of another shape (first: {'; '.join(wrong[:3])})")
        raise CheckpointError(
            f"{source} does not match a {generator.arch} generator with {generator.hparams()}: "
            + "; ".join(parts) + ". Check the architecture name and its ngf / n_blocks / num_downs / norm."
        )
    generator.load_state_dict(state_dict, strict=True)


def load_reference_generator(path: str | os.PathLike, arch: str, **hparams: Any) -> ChannelGenerator:
    """Load a plain generator state dict saved by pytorch-CycleGAN-and-pix2pix (``latest_net_G.pth``)."""
    get_architecture(arch)
    return generator_from_loaded(read_checkpoint(path), str(path), arch, **hparams)


def generator_from_bytes(data: bytes, source: str, arch: str | None = None, **hparams: Any) -> ChannelGenerator:
    """A generator from checkpoint bytes (a ganas checkpoint, or a reference state dict with its ``arch``).

    For workers that receive weights through an object store instead of a path.
    """
    check_crcs(data, source)
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt bytes
        raise CheckpointError(f"{source} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    return generator_from_loaded(loaded, source, arch, **hparams)


def generator_from_loaded(state: Any, source: str, arch: str | None = None, **hparams: Any) -> ChannelGenerator:
    """A ganas checkpoint record as is; a plain state dict loaded into ``create_generator(arch, **hparams)``."""
    if isinstance(state, dict) and state.get("format") == FORMAT:
        return generator_from_record(state, source)
    if arch is None:
        raise CheckpointError(f"{source} is a plain state dict; its architecture (e.g. resnet_9blocks) is needed")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel
    generator = create_generator(arch, **hparams)
    load_state_dict_checked(generator, _drop_instance_norm_stats(generator, state), source)
    return generator


def _drop_instance_norm_stats(generator: ChannelGenerator, state: dict) -> dict:
    """Checkpoints from before PyTorch 0.4 keep running stats for InstanceNorm; the reference drops them too."""
    norms = {name for name, m in generator.named_modules()
             if isinstance(m, torch.nn.InstanceNorm2d) and not m.track_running_stats}
    stats = ("running_mean", "running_var", "num_batches_tracked")
    return {k: v for k, v in state.items() if not (k.rpartition(".")[0] in norms and k.rpartition(".")[2] in stats)}
