"""A generator's state dict out of whatever a training script saved around it.

Supported, in this order: a bare state dict; a dict holding it under one of :data:`CONTAINER_KEYS`
or :data:`GENERATOR_KEYS` (nested up to four levels: a Lightning ``.ckpt``'s ``state_dict``, a
script's ``{"netG": ..., "netD": ..., "optimizer": ...}``); a flat state dict of several networks
told apart by a prefix from :data:`GENERATOR_KEYS` (``G_AB.model.1.weight`` next to
``D_A.model.0.weight``); DataParallel / DistributedDataParallel ``module.`` prefixes; half-precision
tensors (cast to float32). Where several generators are saved, the A->B one is taken: the first
of :data:`GENERATOR_KEYS` present.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .errors import CheckpointError

# dicts whose value is the whole saved model (Lightning, many training scripts)
CONTAINER_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "net", "network", "params",
                  "weights")
# a generator's name next to other networks, A->B first (CycleGAN saves both directions)
GENERATOR_KEYS = ("netG", "netG_A", "net_G", "G", "G_A", "G_A2B", "G_AB", "g_ab", "generator", "generator_ab",
                  "gen", "netG_ema", "G_ema", "generator_ema")
MAX_DEPTH = 4
PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DDP, torch.compile


@dataclass(frozen=True)
class Unwrapped:
    """The generator's state dict (float32, prefixes removed) and what was done to find it."""

    state: dict[str, torch.Tensor]
    notes: tuple[str, ...] = ()


def unwrap_state_dict(saved: Any, source: str) -> Unwrapped:
    """The state dict inside ``saved`` (what ``torch.load`` returned for ``source``)."""
    notes: list[str] = []
    path = ""
    for _ in range(MAX_DEPTH + 1):
        if not isinstance(saved, dict) or not saved:
            raise CheckpointError(f"{source}{path} holds {_kind(saved)}, not a state dict of tensors")
        if all(isinstance(v, torch.Tensor) for v in saved.values()):
            break
        key = next((k for k in CONTAINER_KEYS + GENERATOR_KEYS if isinstance(saved.get(k), dict)), None)
        if key is None:
            keys = ", ".join(map(repr, list(saved)[:8])) + (", ..." if len(saved) > 8 else "")
            raise CheckpointError(
                f"{source}{path} is a dict of {keys}: no generator state dict under a key ganas knows "
                f"({', '.join(CONTAINER_KEYS + GENERATOR_KEYS)}); save the generator alone with "
                "torch.save(generator.state_dict(), PATH)")
        path += f"[{key!r}]"
        saved = saved[key]
    else:
        raise CheckpointError(f"{source}: no state dict of tensors within {MAX_DEPTH} levels of nesting")
    if path:
        notes.append(f"state dict taken from checkpoint{path}")
    state = _select_generator(dict(saved), notes)
    state = _strip_prefixes(state, notes)
    return Unwrapped(_as_float32(state, notes), tuple(notes))


def _kind(value: Any) -> str:
    return "an empty dict" if value == {} else f"a {type(value).__name__}"


def _select_generator(state: dict[str, torch.Tensor], notes: list[str]) -> dict[str, torch.Tensor]:
    """Of a flat dict of several networks (first key parts differ), the tensors of the generator."""
    heads = {key.split(".", 1)[0] for key in state}
    if len(heads) < 2:
        return state
    head = next((k for k in GENERATOR_KEYS if k in heads), None)
    if head is None:
        return state
    notes.append(f"tensors under '{head}.' taken (the checkpoint also holds {', '.join(sorted(heads - {head}))})")
    return {key[len(head) + 1:]: value for key, value in state.items() if key.startswith(head + ".")}


def _strip_prefixes(state: dict[str, torch.Tensor], notes: list[str]) -> dict[str, torch.Tensor]:
    for prefix in PREFIXES:
        if state and all(key.startswith(prefix) for key in state):
            notes.append(f"prefix '{prefix}' removed")
            state = {key[len(prefix):]: value for key, value in state.items()}
    return state


def _as_float32(state: dict[str, torch.Tensor], notes: list[str]) -> dict[str, torch.Tensor]:
    low = sorted({str(v.dtype).removeprefix("torch.") for v in state.values()
                  if v.is_floating_point() and v.dtype != torch.float32})
    if low:
        notes.append(f"{'/'.join(low)} tensors cast to float32")
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
