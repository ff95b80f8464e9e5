"""Finding pretrained weight files of metric networks on local disk: nothing is ever downloaded.

The policy (the same as ``distill/weights.py``, which evaluators must not import): an explicit
path, else an environment variable, else torch hub's checkpoint folder
(``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``), where
torch-fidelity, torchmetrics and pytorch-fid put their downloads, so an existing cache is found.
A path may name the file itself or a folder holding it. An explicit path or a set environment
variable is final: when it points nowhere the error says so rather than silently using another
copy. When nothing is found the error names the file(s), every place searched and where to put it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from supernet.errors import WeightsNotFoundError


@dataclass(frozen=True)
class WeightsSpec:
    """One pretrained network's weight file(s) and how a user points ganas at them.

    ``file_names`` are alternatives holding the same weights, in order of preference.
    """

    what: str
    file_names: tuple[str, ...]
    env_var: str
    flag: str
    published_at: tuple[str, ...] = ()
    alternative: str = ""


INCEPTION_WEIGHTS = WeightsSpec(
    what="FID Inception-v3",
    file_names=("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth"),
    env_var="GANAS_INCEPTION_WEIGHTS",
    flag="--inception-weights",
    published_at=(
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    ),
    alternative=("Alternatively use your own feature extractor: pass the path of a TorchScript file "
                 "(images in [-1, 1] -> (N, D) features) as the extractor instead of 'inception'."),
)


def hub_checkpoint_dir() -> Path:
    """torch hub's checkpoint folder, resolved as ``torch.hub.get_dir()`` does (TORCH_HOME, XDG_CACHE_HOME)."""
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        torch_home = os.path.join(cache, "torch")
    return Path(os.path.expanduser(torch_home)) / "hub" / "checkpoints"


def _candidates(path: str | os.PathLike, file_names: tuple[str, ...]) -> list[Path]:
    """``path`` itself, or each known file name inside it when ``path`` is a folder."""
    path = Path(os.path.expanduser(os.fspath(path)))
    if path.is_dir():
        return [path / name for name in file_names]
    return [path]


def _first_file(candidates: list[Path]) -> Path | None:
    return next((c for c in candidates if c.is_file()), None)


def find_weights(spec: WeightsSpec, explicit: str | os.PathLike | None = None) -> Path:
    """The local path of ``spec``'s weight file, by the policy in this module's docstring."""
    if explicit is not None and os.fspath(explicit) != "":
        source, candidates = "given explicitly", _candidates(explicit, spec.file_names)
    elif os.environ.get(spec.env_var):
        source, candidates = f"from ${spec.env_var}", _candidates(os.environ[spec.env_var], spec.file_names)
    else:
        hub = hub_checkpoint_dir()
        source, candidates = "torch hub cache $TORCH_HOME/hub/checkpoints", [hub / n for n in spec.file_names]
    found = _first_file(candidates)
    if found is not None:
        return found
    raise WeightsNotFoundError(_not_found_message(spec, [f"{c} ({source})" for c in candidates]))


def _not_found_message(spec: WeightsSpec, searched: list[str]) -> str:
    names = " or ".join(spec.file_names)
    target = hub_checkpoint_dir() / spec.file_names[0]
    parts = [
        f"{spec.what} weights not found: need {names}; searched: {'; '.join(searched)}.",
        f"ganas downloads nothing: copy the file to {target}, or set ${spec.env_var} to its path "
        f"(or its folder), or pass {spec.flag} PATH.",
    ]
    if spec.published_at:
        parts.append("It is published at " + " and ".join(spec.published_at) + ".")
    if spec.alternative:
        parts.append(spec.alternative)
    return " ".join(parts)


def find_inception_weights(explicit: str | os.PathLike | None = None) -> Path:
    """The FID Inception weights (torch-fidelity's or pytorch-fid's file) on local disk."""
    return find_weights(INCEPTION_WEIGHTS, explicit)
