"""Channel importance sorting (anycost-GAN style) for elastic supernets.

Elastic layers keep the *first* k channels of each width (see :mod:`supernet.elastic_ops`),
so which channels come first decides how good every slimmer subnet is. Sorting puts the
most important channels first without changing the full network's function: each channel
*group* (the channels one config position slices together) is reordered by one permutation
applied to every layer that writes, carries or reads those channels.

A group is described as data (:class:`ChannelGroup`); one builder per architecture family,
registered in :data:`GROUP_BUILDERS`, lists the groups of a generator.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from foundation.registry import Registry

from .errors import ArchitectureError
from .generators import (ChannelGenerator, MobileResnetGenerator, MobileSpadeGenerator, ResnetGenerator,
                         SpadeGenerator, UnetGenerator)
from .generators.resnet import block_groups
from .generators.spade import TRUNK_BLOCKS
from .generators.spade_blocks import Spade
from .layers import SeparableConv2d

NORM_TYPES = (nn.BatchNorm2d, nn.InstanceNorm2d)


@dataclass(frozen=True)
class Consumer:
    """A conv reading the group's channels on its input dim; ``half`` 0/1 for one half of a concatenation."""

    module: nn.Module
    half: int | None = None


@dataclass
class ChannelGroup:
    """Channels that must be permuted together.

    ``producers`` write the channels (conv output dim); their filters' L1 norms, summed, are the
    importance. ``carriers`` act per channel (norms, depthwise convs) and ``consumers`` read them.
    ``position`` is the config position whose width slices this group.
    """

    name: str
    position: int
    producers: list[nn.Module]
    carriers: list[nn.Module] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)

    @property
    def width(self) -> int:
        return _out_channels(self.producers[0])


# -- per-layer permutation helpers -----------------------------------------------------------
def _out_dim(conv: nn.Module) -> int:
    """Weight dim of output channels: (out, in, k, k) for a conv, (in, out, k, k) for a transposed one."""
    return 1 if isinstance(conv, nn.ConvTranspose2d) else 0


def _out_channels(conv: nn.Module) -> int:
    return conv.weight.shape[_out_dim(conv)]


def filter_l1(conv: nn.Module) -> torch.Tensor:
    """L1 norm of each output channel's filter (anycost-GAN's importance of a channel)."""
    weight = conv.weight.detach()
    dim = _out_dim(conv)
    return weight.abs().transpose(0, dim).reshape(weight.shape[dim], -1).sum(1)


def group_importance(group: ChannelGroup) -> torch.Tensor:
    """Per-channel importance of a group: filter L1 norms summed over all its producers."""
    return torch.stack([filter_l1(p) for p in group.producers]).sum(0)


def _permute_(tensor: torch.Tensor | None, dim: int, index: torch.Tensor) -> None:
    if tensor is not None:
        tensor.copy_(tensor.index_select(dim, index.to(tensor.device)))


def _permute_producer(conv: nn.Module, perm: torch.Tensor) -> None:
    _permute_(conv.weight, _out_dim(conv), perm)
    _permute_(conv.bias, 0, perm)


def _permute_carrier(module: nn.Module, perm: torch.Tensor) -> None:
    """Norms permute affine parameters and running statistics; depthwise convs their filters and bias."""
    if isinstance(module, nn.Conv2d):
        _permute_producer(module, perm)
        return
    for name in ("weight", "bias", "running_mean", "running_var"):
        _permute_(getattr(module, name, None), 0, perm)


def _permute_consumer(consumer: Consumer, perm: torch.Tensor) -> None:
    conv = consumer.module
    dim = 0 if isinstance(conv, nn.ConvTranspose2d) else 1
    index = perm
    if consumer.half is not None:  # permute one half of a concatenated input, keep the other
        full = conv.weight.shape[dim]
        index = torch.arange(full)
        start = consumer.half * (full // 2)
        index[start: start + len(perm)] = perm + start
    _permute_(conv.weight, dim, index)


def _check(group: ChannelGroup) -> None:
    """Refuse a group whose layers disagree on its width: a builder out of step with a generator."""
    widths = {_out_channels(p) for p in group.producers}
    widths |= {m.weight.shape[0] for m in group.carriers if isinstance(m, nn.Conv2d)}
    widths |= {m.num_features for m in group.carriers if isinstance(m, NORM_TYPES)}
    for c in group.consumers:
        read = c.module.weight.shape[0 if isinstance(c.module, nn.ConvTranspose2d) else 1]
        widths.add(read // 2 if c.half is not None else read)
    if len(widths) != 1:
        raise ArchitectureError(f"channel group {group.name} has layers of widths {sorted(widths)}; cannot sort it")


# -- group builders, one per architecture family -----------------------------------------------
GroupBuilder = Callable[[ChannelGenerator], list[ChannelGroup]]
GROUP_BUILDERS: Registry[GroupBuilder] = Registry("channel-sorting architecture", ArchitectureError)


def register_group_builder(*archs: str) -> Callable[[GroupBuilder], GroupBuilder]:
    """Register the builder listing the channel groups of generators whose ``arch`` is one of ``archs``."""
    def decorate(builder: GroupBuilder) -> GroupBuilder:
        for arch in archs:
            GROUP_BUILDERS.register(arch, builder)
        return builder
    return decorate


def _norm_after(seq: nn.Sequential, module: nn.Module) -> list[nn.Module]:
    """The norm directly after ``module`` in ``seq``, as a 0- or 1-element list."""
    children = list(seq)
    i = next(i for i, m in enumerate(children) if m is module)
    return [children[i + 1]] if i + 1 < len(children) and isinstance(children[i + 1], NORM_TYPES) else []


@dataclass(frozen=True)
class _ConvUnit:
    """One conv of a residual block: per-channel layers on its input side, the conv, its norm."""

    input_carriers: list[nn.Module]
    conv: nn.Module
    norms: list[nn.Module]


def _block_units(block: nn.Module) -> list[_ConvUnit]:
    units = []
    for layer in block.conv_block:
        if isinstance(layer, SeparableConv2d):  # depthwise and its norm carry the input channels
            depthwise, inner_norm, pointwise = layer.conv
            units.append(_ConvUnit([depthwise, inner_norm], pointwise, _norm_after(block.conv_block, layer)))
        elif isinstance(layer, nn.Conv2d):
            units.append(_ConvUnit([], layer, _norm_after(block.conv_block, layer)))
    return units


@register_group_builder(ResnetGenerator.arch, MobileResnetGenerator.arch)
def resnet_groups(g: ResnetGenerator) -> list[ChannelGroup]:
    """Stem, down 1, the trunk (down 2 + every block's output + the residual adds), each block's
    hidden channels, up 1 and up 2. The final 7x7 conv only reads (its outputs are the image)."""
    seq = g.model
    stem, down1, down2, up1, up2, last = [m for m in seq if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    blocks = [_block_units(b) for b in g.blocks()]
    groups = [
        ChannelGroup("stem", 0, [stem], _norm_after(seq, stem), [Consumer(down1)]),
        ChannelGroup("down1", 1, [down1], _norm_after(seq, down1), [Consumer(down2)]),
        ChannelGroup(
            "trunk", 2,
            [down2] + [second.conv for _, second in blocks],
            _norm_after(seq, down2) + [m for first, second in blocks for m in second.norms + first.input_carriers],
            [Consumer(first.conv) for first, _ in blocks] + [Consumer(up1)],
        ),
    ]
    for b, ((first, second), group) in enumerate(zip(blocks, block_groups(g.n_blocks))):
        groups.append(ChannelGroup(f"block{b}.hidden", 3 + group, [first.conv],
                                   first.norms + second.input_carriers, [Consumer(second.conv)]))
    groups.append(ChannelGroup("up1", 6, [up1], _norm_after(seq, up1), [Consumer(up2)]))
    groups.append(ChannelGroup("up2", 7, [up2], _norm_after(seq, up2), [Consumer(last)]))
    return groups


@register_group_builder(UnetGenerator.arch)
def unet_groups(g: UnetGenerator) -> list[ChannelGroup]:
    """Per level i: the down-conv's outputs (read by the next down-conv and by the first half of
    this level's up-conv input) and, below the top, the up-conv's outputs (read by the second
    half of the level above's up-conv input). The two halves of a skip concatenation are distinct
    channels, each sliced to its first k, so each gets its own permutation."""
    levels = g.levels()
    downs, ups = [], []
    for block in levels:
        downs.append(next(m for m in block.model if isinstance(m, nn.Conv2d)))
        ups.append(next(m for m in block.model if isinstance(m, nn.ConvTranspose2d)))
    last = len(levels) - 1
    groups = []
    for i, block in enumerate(levels):
        readers = [Consumer(downs[i + 1]), Consumer(ups[i], half=0)] if i < last else [Consumer(ups[i])]
        groups.append(ChannelGroup(f"level{i}.down", i, [downs[i]], _norm_after(block.model, downs[i]), readers))
        if i > 0:
            groups.append(ChannelGroup(f"level{i}.up", i - 1, [ups[i]], _norm_after(block.model, ups[i]),
                                       [Consumer(ups[i - 1], half=1)]))
    return groups


def _spade_hidden_group(norm: Spade, name: str, position: int) -> ChannelGroup:
    """A SPADE layer's shared conv outputs, read by its gamma and beta convs (through the depthwise convs and
    their InstanceNorm when separable)."""
    readers, carriers = [], []
    for conv in (norm.mlp_gamma, norm.mlp_beta):
        if isinstance(conv, SeparableConv2d):
            carriers += [conv.conv[0], conv.conv[1]]
            conv = conv.conv[2]
        readers.append(Consumer(conv))
    return ChannelGroup(f"{name}.hidden", position, [norm.mlp_shared[0]], carriers, readers)


@register_group_builder(SpadeGenerator.arch, MobileSpadeGenerator.arch)
def spade_groups(g: SpadeGenerator) -> list[ChannelGroup]:
    """The trunk (fc and every trunk block's conv_1, added together), each block's middle channels (conv_0 ->
    conv_1), each up block's output (conv_1 + conv_s) and each SPADE layer's hidden channels. The gamma and
    beta convs of the SPADE layers normalising a group write one value per channel of it: producers too, with
    the parameter-free norm's running statistics as carriers."""
    net = g.model
    names = [name for name, _ in net.named_children() if name in TRUNK_BLOCKS or name.startswith("up_")]
    blocks = dict(zip(names, net.blocks()))

    def modulated(norms: list[Spade]) -> tuple[list[nn.Module], list[nn.Module]]:
        return [c for n in norms for c in n.output_convs()], [n.param_free_norm for n in norms]

    groups, readers = [], []
    first_up = blocks["up_0"]
    writers, stats = modulated([blocks[n].norm_0 for n in TRUNK_BLOCKS] + [first_up.norm_0, first_up.norm_s])
    trunk_writers = [net.fc] + [blocks[n].conv_1 for n in TRUNK_BLOCKS]
    readers = [Consumer(blocks[n].conv_0) for n in TRUNK_BLOCKS] + [Consumer(first_up.conv_0),
                                                                    Consumer(first_up.conv_s)]
    groups.append(ChannelGroup("trunk", 0, trunk_writers + writers, stats, readers))
    for position, (name, block) in enumerate(blocks.items(), start=1):
        writers, stats = modulated([block.norm_1])
        groups.append(ChannelGroup(f"{name}.middle", position, [block.conv_0] + writers, stats,
                                   [Consumer(block.conv_1)]))
        groups += [_spade_hidden_group(norm, f"{name}.{label}", position)
                   for norm, label in zip(block.norms(), ("norm_0", "norm_1", "norm_s"))]
        if block.learned_shortcut:  # an up block's output: read by the next up block, or by conv_img
            following = blocks.get(f"up_{position - 3}")
            if following is None:
                writers, stats, readers = [], [], [Consumer(net.conv_img)]
            else:
                writers, stats = modulated([following.norm_0, following.norm_s])
                readers = [Consumer(following.conv_0), Consumer(following.conv_s)]
            groups.append(ChannelGroup(f"{name}.out", position, [block.conv_1, block.conv_s] + writers, stats,
                                       readers))
    return groups


def channel_groups(generator: ChannelGenerator) -> list[ChannelGroup]:
    """The channel groups of ``generator``, from the builder registered for its architecture family."""
    groups = GROUP_BUILDERS.get(generator.arch or type(generator).__name__)(generator)
    for group in groups:
        _check(group)
    return groups


@torch.no_grad()
def sort_channels(supernet: ChannelGenerator) -> None:
    """Reorder channels in place so that the first k of every elastic width are the k most important.

    Importance of a channel is the L1 norm of the filters writing it, summed over every producer
    of its group (for the ResNet trunk: down-conv 2 and every block's second conv, which all add
    into the same channels). Each group gets one descending, stable permutation, applied to its
    producers (output dim and bias), carriers (norm affine parameters and running statistics,
    depthwise filters) and consumers (input dim; for U-Net skips, the matching half of the
    concatenated input). The full network computes the same function afterwards (in eval and
    train mode; up to float rounding), while each slimmer config now keeps the strongest channels.

    Use it on a trained (or teacher-initialised) supernet before searching or fine-tuning, and
    build optimizers afterwards: optimizer state such as Adam moments is not permuted.
    Raises :class:`ArchitectureError` for an architecture with no registered group builder.
    """
    for group in channel_groups(supernet):
        perm = torch.sort(group_importance(group).cpu(), descending=True, stable=True).indices
        for producer in group.producers:
            _permute_producer(producer, perm)
        for carrier in group.carriers:
            _permute_carrier(carrier, perm)
        for consumer in group.consumers:
            _permute_consumer(consumer, perm)
