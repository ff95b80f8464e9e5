"""Reading tensor files without running code from them: ``torch.load(weights_only=True)``, or safetensors.

One reader for every file of weights ganas is given (checkpoints, teachers, pretrained networks):
a ``torch.save`` archive (.pth / .pt / .ckpt, zip or legacy format) is unpickled with PyTorch's
weights-only unpickler, which refuses any global it does not know instead of importing and calling
it; a safetensors file (which holds no code at all) is read with the ``safetensors`` package when
it is installed. A zip archive's CRC-32s are checked first: ``torch.load`` never checks them, so
overwritten tensor bytes would load as wrong weights without an error. Every failure is one typed
error that names the file and says what to do.
"""
from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from .errors import GanasError

SAFETENSORS_SUFFIX = ".safetensors"


def read_tensor_file(path: str | os.PathLike, error: type[GanasError] = GanasError) -> Any:
    """The object saved in ``path``; ``error`` (naming the file) when it is missing, unreadable or unsafe."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path} does not exist")
    return read_tensor_bytes(path.read_bytes(), str(path), error)


def read_tensor_bytes(data: bytes, source: str, error: type[GanasError] = GanasError) -> Any:
    """The object saved in ``data`` (the bytes of a file called ``source``)."""
    if source.endswith(SAFETENSORS_SUFFIX) or looks_like_safetensors(data):
        return _read_safetensors(data, source, error)
    check_crcs(data, source, error)
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing or reading them
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _pickled_globals(data) or re.findall(r"GLOBAL ([\w.]+)", str(exc))
        if found:  # torch's safe unpickler refused objects that unpickling would import and call
            raise error(_unsafe_message(source, found)) from None
        raise error(f"{source} cannot be read as a PyTorch checkpoint (not a torch.save file)") from None
    except Exception as exc:  # torch raises many types for a corrupt file
        raise error(f"{source} cannot be read as a PyTorch checkpoint ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def check_crcs(data: bytes | str | os.PathLike, source: str, error: type[GanasError] = GanasError) -> None:
    """Refuse a ``torch.save`` zip archive (its bytes, or its path) whose bytes changed after it was written
    (a legacy, pre-zip file has no CRCs to check and passes)."""
    handle = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if not zipfile.is_zipfile(handle):
        return
    try:
        with zipfile.ZipFile(handle) as archive:
            corrupt = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise error(f"checkpoint {source} is a damaged zip archive ({exc}); restore the file or write it again") from None
    if corrupt is not None:
        raise error(f"checkpoint {source} is corrupt: its member {corrupt} fails its CRC-32 check (its bytes changed "
                    "after it was written); restore the file or write it again")


def looks_like_safetensors(data: bytes) -> bool:
    """safetensors: an 8-byte little-endian header length, then a JSON object of that length."""
    if len(data) < 10:
        return False
    length = int.from_bytes(data[:8], "little")
    return 2 <= length <= len(data) - 8 and data[8:9] == b"{"


def _read_safetensors(data: bytes, source: str, error: type[GanasError]) -> dict:
    try:
        from safetensors.torch import load
    except ImportError:
        raise error(f"{source} is a safetensors file; reading it needs the 'safetensors' package, which is not "
                    "installed: pip install safetensors (or save the weights with torch.save instead)") from None
    try:
        tensors = load(data)
    except Exception as exc:  # the package raises its own types for a corrupt file
        raise error(f"{source} cannot be read as a safetensors file ({type(exc).__name__}: {exc})") from None
    # the format keeps no order of its own; natural order restores the order of numbered modules
    return {key: tensors[key] for key in sorted(tensors, key=natural_key)}


def natural_key(name: str) -> tuple:
    """``model.10.weight`` after ``model.9.weight``: numbers compared as numbers."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name))


def _unsafe_message(source: str, found: list[str]) -> str:
    return (f"{source} holds pickled Python objects ({', '.join(found[:5])}) that loading would have to import and "
            "run; ganas loads weights only (torch.load with weights_only=True) and never executes code from a file. "
            "If you trust the file, load it in your own code and save the network's weights alone: "
            "torch.save(model.state_dict(), PATH)")


def _pickled_globals(data: bytes) -> list[str]:
    """The non-torch globals the pickles in ``data`` name, read without unpickling (zip or legacy format)."""
    try:
        from torch.serialization import get_unsafe_globals_in_checkpoint

        return list(get_unsafe_globals_in_checkpoint(io.BytesIO(data)))
    except Exception:  # not a zip archive: scan the legacy format's pickles, which follow one another
        pass
    import pickletools

    found, stream = [], io.BytesIO(data)
    try:
        for _ in range(8):
            strings: list[str] = []
            for opcode, arg, _pos in pickletools.genops(stream):
                if opcode.name == "GLOBAL":
                    found.append(str(arg).replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(".".join(strings[-2:]))
                elif isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # the end of the pickles, or bytes that are no pickle at all
        pass
    return [name for name in dict.fromkeys(found) if not name.startswith(("torch.", "collections."))]
