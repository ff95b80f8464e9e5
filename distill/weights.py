"""Finding and reading pretrained weight files from local disk: nothing is ever downloaded.

One policy for every pretrained network (VGG16 for perceptual losses, Inception for FID, ...):
an explicit path, else an environment variable, else torch hub's checkpoint folder
(``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``, the folder
torchvision and torch-fidelity download into, so an existing cache is found). A path may
name the file itself or a folder holding it. When the file is missing the error names the
file, every place searched and where to put it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from supernet.errors import GanasError, WeightsNotFoundError


class WeightsFileError(GanasError):
    """A pretrained weight file exists but cannot be read, or holds another network's weights."""


def hub_checkpoint_dir() -> Path:
    """torch hub's checkpoint folder, resolved the way ``torch.hub.get_dir()`` does (without importing torch)."""
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        torch_home = os.path.join(cache, "torch")
    return Path(os.path.expanduser(torch_home)) / "hub" / "checkpoints"


def _candidate(path: str | os.PathLike, filename: str) -> Path:
    """``path`` itself, or ``path/filename`` when ``path`` is an existing folder."""
    path = Path(os.path.expanduser(os.fspath(path)))
    return path / filename if path.is_dir() else path


def find_weights(filename: str, explicit: str | os.PathLike | None = None, env_var: str | None = None, *,
                 what: str | None = None, hint: str | None = None) -> Path:
    """The local path of weight file ``filename``, by the policy in this module's docstring.

    An explicit path or a set environment variable is final: when it points nowhere the
    error says so instead of silently falling back to another copy. ``what`` names the
    network in messages (e.g. "VGG16"); ``hint`` is appended (e.g. how to avoid the file).
    """
    searched: list[str] = []
    if explicit is not None and os.fspath(explicit) != "":
        candidate = _candidate(explicit, filename)
        if candidate.is_file():
            return candidate
        searched.append(f"{candidate} (given explicitly)")
    elif env_var and os.environ.get(env_var):
        candidate = _candidate(os.environ[env_var], filename)
        if candidate.is_file():
            return candidate
        searched.append(f"{candidate} (from ${env_var})")
    else:
        candidate = hub_checkpoint_dir() / filename
        if candidate.is_file():
            return candidate
        searched.append(f"{candidate} (torch hub cache: $TORCH_HOME/hub/checkpoints)")
    label = f"{what} weights file {filename}" if what else f"weights file {filename}"
    ways = [f"copy it to {hub_checkpoint_dir() / filename}"]
    if env_var:
        ways.append(f"set ${env_var} to its path")
    ways.append("pass its path explicitly")
    message = f"{label} not found; searched: {'; '.join(searched)}. Nothing is downloaded: {', or '.join(ways)}"
    if hint:
        message += f". {hint}"
    raise WeightsNotFoundError(message)


def read_weights(path: str | os.PathLike) -> Any:
    """``torch.load`` on CPU with ``weights_only=True``; a corrupt file gives a typed error naming it."""
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for an unreadable or unsafe file
        raise WeightsFileError(f"weights file {path} cannot be read ({type(exc).__name__}: {exc})") from None
