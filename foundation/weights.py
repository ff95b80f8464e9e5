"""Finding pretrained weight files on local disk: nothing is ever downloaded.

One policy for every pretrained network (Inception for FID, VGG16 for perceptual losses, ...):
an explicit path, else an environment variable, else torch hub's checkpoint folder
(``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``, where torchvision,
torch-fidelity, torchmetrics and pytorch-fid put their downloads, so an existing cache is found).
A path may name the file itself or a folder holding it. An explicit path or a set environment
variable is final: when it points nowhere the error says so rather than silently using another
copy. When nothing is found the error names the file(s), every place searched and where to put it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import WeightsFileError, WeightsNotFoundError


@dataclass(frozen=True)
class WeightsSpec:
    """One pretrained network's weight file and how a user points ganas at it.

    ``file_names`` are alternatives holding the same weights, in order of preference; ``flag``
    is the command-line option taking its path; ``hint`` ends the not-found message (e.g. how
    to do without the file).
    """

    what: str
    file_names: tuple[str, ...]
    env_var: str | None = None
    flag: str | None = None
    published_at: tuple[str, ...] = ()
    hint: str = ""


def hub_checkpoint_dir() -> Path:
    """torch hub's checkpoint folder, resolved as ``torch.hub.get_dir()`` does (without importing torch)."""
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        torch_home = os.path.join(cache, "torch")
    return Path(os.path.expanduser(torch_home)) / "hub" / "checkpoints"


def _candidates(path: str | os.PathLike, file_names: tuple[str, ...]) -> list[Path]:
    """``path`` itself, or each known file name inside it when ``path`` is a folder."""
    path = Path(os.path.expanduser(os.fspath(path)))
    return [path / name for name in file_names] if path.is_dir() else [path]


def find_weights(spec: WeightsSpec, explicit: str | os.PathLike | None = None) -> Path:
    """The local path of ``spec``'s weight file, by the policy in this module's docstring."""
    if explicit is not None and os.fspath(explicit) != "":
        source, candidates = "given explicitly", _candidates(explicit, spec.file_names)
    elif spec.env_var and os.environ.get(spec.env_var):
        source, candidates = f"from ${spec.env_var}", _candidates(os.environ[spec.env_var], spec.file_names)
    else:
        hub = hub_checkpoint_dir()
        source, candidates = "torch hub cache $TORCH_HOME/hub/checkpoints", [hub / n for n in spec.file_names]
    found = next((c for c in candidates if c.is_file()), None)
    if found is not None:
        return found
    raise WeightsNotFoundError(not_found_message(spec, [f"{c} ({source})" for c in candidates]))


def not_found_message(spec: WeightsSpec, searched: list[str]) -> str:
    """The file(s) needed, the places searched, and every way of giving ganas the file."""
    ways = [f"copy it to {hub_checkpoint_dir() / spec.file_names[0]}"]
    if spec.env_var:
        ways.append(f"set ${spec.env_var} to its path (or its folder)")
    ways.append(f"pass {spec.flag} PATH" if spec.flag else "pass its path explicitly")
    parts = [f"{spec.what} weights file {' or '.join(spec.file_names)} not found; searched: {'; '.join(searched)}.",
             f"ganas downloads nothing: {', or '.join(ways)}."]
    if spec.published_at:
        parts.append("It is published at " + " and ".join(spec.published_at) + ".")
    if spec.hint:
        parts.append(spec.hint)
    return " ".join(parts)


def read_weights(path: str | os.PathLike) -> Any:
    """``torch.load`` on CPU with ``weights_only=True`` (or safetensors); a missing, corrupt or unsafe file
    raises :class:`WeightsFileError` naming it."""
    from .tensorfiles import read_tensor_file

    return read_tensor_file(path, WeightsFileError)
