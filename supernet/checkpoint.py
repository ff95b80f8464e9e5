"""Saving and loading generators as self-describing checkpoints (``weights_only=True`` safe)."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from foundation.errors import GanasError
from foundation.files import atomic_path
from foundation.tensorfiles import read_tensor_bytes, read_tensor_file

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


def read_checkpoint(path: str | os.PathLike) -> Any:
    """What ``path`` holds, read without running code from it (``weights_only=True``, or safetensors)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return read_tensor_file(path, CheckpointError)


def generator_from_record(record: dict[str, Any], source: str = "checkpoint") -> ChannelGenerator:
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(
            f"{source} is not a ganas generator checkpoint (format {FORMAT}); for another implementation's "
            "state dict, give it as --teacher (train supernet, train finetune, supernet register; see docs/teachers.md)"
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


def load_reference_generator(path: str | os.PathLike, arch: str | None = None, key_map=None,
                             **hparams: Any) -> ChannelGenerator:
    """Load a plain generator state dict (pytorch-CycleGAN-and-pix2pix's ``latest_net_G.pth``, or another
    implementation's): as is, by structure, or by ``key_map`` (see :mod:`supernet.foreign`)."""
    if arch is not None:
        get_architecture(arch)
    return generator_from_loaded(read_checkpoint(path), str(path), arch, key_map, **hparams)


def generator_from_bytes(data: bytes, source: str, arch: str | None = None, key_map=None,
                         **hparams: Any) -> ChannelGenerator:
    """A generator from checkpoint bytes (a ganas checkpoint, or a plain state dict).

    For workers that receive weights through an object store instead of a path.
    """
    return generator_from_loaded(read_tensor_bytes(data, source, CheckpointError), source, arch, key_map, **hparams)


def generator_from_loaded(state: Any, source: str, arch: str | None = None, key_map=None,
                          **hparams: Any) -> ChannelGenerator:
    """A ganas checkpoint record as is; a plain state dict imported (:func:`supernet.foreign.import_generator`),
    with ``key_map`` (a dict of checkpoint key -> ganas key, or a :class:`~supernet.foreign.MappingFile`)."""
    if isinstance(state, dict) and state.get("format") == FORMAT:
        return generator_from_record(state, source)
    return import_plain(state, source, arch, key_map, **hparams).generator


def import_plain(state: Any, source: str, arch: str | None = None, key_map=None, **hparams: Any):
    """:func:`supernet.foreign.import_generator` with a recorded ``key_map`` dict accepted as well."""
    from .foreign import MappingFile, import_generator

    if isinstance(key_map, dict):
        key_map = MappingFile(dict(key_map), source="the recorded key mapping")
    return import_generator(state, source, arch, hparams, key_map)
