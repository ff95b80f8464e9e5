"""MACs and parameters of a network, counted by tracing one forward pass with thop.

The papers' convention (GAN Compression, OMGD), which thop's defaults do not follow:

* conv and linear: output elements x (C_in / groups) x kh x kw, the bias is free;
* transposed conv: counted the same way on the OUTPUT side (thop 2.x counts the input side,
  4x fewer for stride 2; the published 56.8G needs the output side);
* norm layers: one MAC per element only when affine (thop charges 2 per element, 4 when
  affine, even for the non-affine InstanceNorm of CycleGAN's generator); SPADE's modulation
  ``x * (1 + gamma) + beta`` is an affine norm with per-pixel scale and shift: one per element;
* activations, padding, additions and concatenation: 0.

The rules also read the widths actually used, so an elastic supernet run at a config is
counted like the subnet extracted at that config, parameters included.
"""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from supernet.errors import ArchitectureError, ConfigError, InputSizeError

Size = tuple[int, int]
_UNITS = (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3))


@dataclass(frozen=True)
class MacsCount:
    """Multiply-accumulates and parameters of one network on one image."""

    macs: int
    params: int

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def format_count(value: int) -> str:
    """``56799264768`` -> ``56.80G (56,799,264,768)``: rounded with a unit, then exact."""
    for unit, scale in _UNITS:
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit} ({value:,})"
    return f"{value:,}"


def parse_size(size: int | Sequence[int]) -> Size:
    """An ``int`` (square) or ``(height, width)`` of positive integers."""
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair):
        raise InputSizeError(f"input size {size!r} must be a positive integer or (height, width) of positive integers")
    return pair  # type: ignore[return-value]


# -- counting rules (thop ``custom_ops``) -----------------------------------------------------------
# Each rule adds the module's MACs to ``m.total_ops`` (thop's accumulator) and records the number of
# parameters the pass actually used in ``used``, which differs from ``numel`` for sliced elastic layers.

Rule = Callable[[nn.Module, tuple, torch.Tensor], None]


def _conv_rule(used: dict[nn.Module, int]) -> Rule:
    def rule(m: nn.Module, x: tuple, y: torch.Tensor) -> None:
        # a dense conv uses every input channel it gets (an elastic one slices its weight to them);
        # a grouped one, depthwise included, sees weight.shape[1] inputs per output whatever its width
        per_output = x[0].shape[1] if m.groups == 1 else m.weight.shape[1]
        kernel = math.prod(m.weight.shape[2:])
        m.total_ops += y.numel() * per_output * kernel
        used[m] = y.shape[1] * (per_output * kernel + (m.bias is not None))
    return rule


def _conv_transpose_rule(used: dict[nn.Module, int]) -> Rule:
    def rule(m: nn.Module, x: tuple, y: torch.Tensor) -> None:
        per_output = x[0].shape[1] // m.groups
        kernel = math.prod(m.weight.shape[2:])
        m.total_ops += y.numel() * per_output * kernel  # output side, as the papers count
        used[m] = y.shape[1] * (per_output * kernel + (m.bias is not None))
    return rule


def _norm_rule(used: dict[nn.Module, int]) -> Rule:
    def rule(m: nn.Module, x: tuple, y: torch.Tensor) -> None:
        affine = bool(getattr(m, "affine", False) or getattr(m, "elementwise_affine", False))
        m.total_ops += x[0].numel() if affine else 0
        if not isinstance(m, nn.LayerNorm):  # per-channel weight and bias, sliced to the channels used
            used[m] = x[0].shape[1] * len(list(m.parameters(recurse=False)))
    return rule


def _modulation_rule(m: nn.Module, x: tuple, y: torch.Tensor) -> None:
    """SPADE's ``normalized * (1 + gamma) + beta``: an affine norm with per-pixel scale and shift, one MAC
    per element."""
    m.total_ops += y.numel()


def counting_rules(used: dict[nn.Module, int]) -> dict[type, Rule]:
    """thop ``custom_ops`` for the papers' convention; subclasses (elastic layers) inherit them via MRO."""
    from supernet.generators.spade_blocks import SpadeModulation

    conv, conv_t, norm = _conv_rule(used), _conv_transpose_rule(used), _norm_rule(used)
    rules: dict[type, Rule] = {nn.Conv1d: conv, nn.Conv2d: conv, nn.Conv3d: conv,
                               nn.ConvTranspose1d: conv_t, nn.ConvTranspose2d: conv_t, nn.ConvTranspose3d: conv_t,
                               nn.modules.batchnorm._NormBase: norm, nn.GroupNorm: norm, nn.LayerNorm: norm,
                               SpadeModulation: _modulation_rule}
    return rules


def _used_parameters(module: nn.Module, used: dict[nn.Module, int]) -> int:
    """Parameters the pass used: the rules' figure for counted layers, ``numel`` for everything else."""
    counted = {id(p) for m in used for p in m.parameters(recurse=False)}
    rest = {id(p): p.numel() for p in module.parameters() if id(p) not in counted}
    return sum(used.values()) + sum(rest.values())


# -- public entry point -------------------------------------------------------------------------------

def _prepare(module: nn.Module, size: Size, config: Sequence[int] | None
             ) -> tuple[nn.Module, int | None, contextlib.AbstractContextManager]:
    """A private copy of ``module``, and the block that runs it at ``config``, after checking the size and
    config it is asked for."""
    from supernet.generators import ChannelGenerator

    if not isinstance(module, ChannelGenerator):
        if config is not None:
            raise ConfigError(f"a config applies to ganas generators only, not to {type(module).__name__}")
        return copy.deepcopy(module), None, contextlib.nullcontext()
    module.check_input_size(*size)
    work = copy.deepcopy(module)
    if config is not None:
        if not work.elastic and tuple(config) != tuple(work.config):
            raise ArchitectureError(
                f"this static {work.arch} generator is built at {work.config}; count a config of an elastic "
                "supernet (elastic=True) or build the generator at that config"
            )
        if work.elastic:
            return work, getattr(module, "input_nc", None), work.configured(config)
    return work, getattr(module, "input_nc", None), contextlib.nullcontext()


def count_macs(module: nn.Module, input_size: int | Sequence[int] = (256, 256), in_channels: int | None = None,
               config: Sequence[int] | None = None) -> MacsCount:
    """MACs and parameters of one ``1 x C x H x W`` forward pass, counted by thop with the papers' rules.

    ``module`` is left untouched: counting runs on a deep copy, so neither thop's ``total_ops``
    nor the config reaches it. A supernet is counted at ``config`` (default: its active config);
    ``in_channels`` defaults to a generator's ``input_nc``, else 3. The input goes where the
    parameters are: a module built under ``with torch.device("meta")`` is counted from shapes
    alone, with no weights initialised and nothing computed.
    """
    import thop

    size = parse_size(input_size)
    if in_channels is not None and (not isinstance(in_channels, int) or in_channels <= 0):
        raise InputSizeError(f"in_channels must be a positive integer (got {in_channels!r})")
    work, generator_channels, configured = _prepare(module, size, config)
    channels = in_channels or generator_channels or 3
    reference = next(iter(work.parameters()), None)
    x = torch.zeros(1, channels, *size, dtype=reference.dtype if reference is not None else torch.float32,
                    device=reference.device if reference is not None else "cpu")
    used: dict[nn.Module, int] = {}
    with configured:
        macs, _ = thop.profile(work, inputs=(x,), custom_ops=counting_rules(used), verbose=False)
    return MacsCount(macs=int(round(macs)), params=_used_parameters(work, used))
