"""Loading a user's TorchScript network (a feature extractor, a segmenter) and probing its output width.

A network saved with ``torch.jit.save`` is loaded on the CPU in eval mode. Its output width (feature
size, class count) is its declared int attribute when it has one, else dimension 1 of its output on
one zero image. Every failure is the caller's typed error naming the file. What kind of torch file a
path holds is read from its zip directory alone (:func:`archive_members`), without loading it.
"""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

PROBE_SIZE = 64


def archive_members(path: Path, error: type[Exception], what: str) -> list[str]:
    """The member names of ``path``, a zip archive as ``torch.save`` and ``torch.jit.save`` write; ``error`` (naming
    the file as a ``what`` file) when it cannot be read or is not such an archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except zipfile.BadZipFile:
        raise error(f"{path} is not a {what} file: TorchScript files and torch checkpoints are zip archives "
                    "(torch.jit.save, torch.save), this one is not") from None
    except OSError as exc:
        raise error(f"{what} file {path} cannot be read ({exc.strerror or exc})") from None


def is_torchscript(members: Sequence[str]) -> bool:
    """TorchScript archives hold a ``constants.pkl`` and ``code/``; checkpoints do not."""
    return any(n.endswith("/constants.pkl") for n in members) and any("/code/" in n for n in members)


def is_torch_archive(members: Sequence[str]) -> bool:
    """A ``torch.save`` (or ``torch.jit.save``) archive: its pickled record is ``<name>/data.pkl``."""
    return any(n.endswith("/data.pkl") or n == "data.pkl" for n in members)


def load_torchscript(path: Path, error: type[Exception], remedy: str = "") -> nn.Module:
    """``torch.jit.load(path)`` on the CPU, in eval mode; a file that is not TorchScript raises ``error``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError/ValueError for a non-TorchScript or broken file
        first_line = (str(exc).splitlines() or [""])[0]
        raise error(f"{path} is not a TorchScript file ({type(exc).__name__}: {first_line})"
                    f"{'; ' + remedy if remedy else ''}") from None
    return module.eval()


def probe_width(module: nn.Module, path: Path, error: type[Exception], *, attribute: str, meaning: str,
                what: str, output: str, dims: int, minimum: int = 1) -> int:
    """The int ``attribute`` of ``module`` when at least ``minimum``, else dimension 1 of its output on a
    (1, 3, 64, 64) zero image, which must have ``dims`` dimensions (``output`` describes them)."""
    declared = getattr(module, attribute, None)
    if isinstance(declared, int) and declared >= minimum:
        return declared
    try:
        with torch.no_grad():
            out = module(torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE))
    except Exception as exc:  # any failure of the user's network on the probe
        raise error(f"cannot infer the {meaning} of {path}: give the module an int attribute {attribute} "
                    f"({type(exc).__name__}: {exc})") from None
    if not isinstance(out, Tensor) or out.dim() != dims or out.shape[0] != 1:
        raise error(f"TorchScript {what} {path} must return {output}, got "
                    f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}")
    return int(out.shape[1])
