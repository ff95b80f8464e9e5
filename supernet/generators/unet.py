"""pix2pix U-Net generator, built recursively like pytorch-CycleGAN-and-pix2pix's
``UnetGenerator`` so that its ``latest_net_G.pth`` (keys ``model.model.0.weight``, ...) loads.

Config positions: one per level ``i`` (0 = outermost), the width of that level's down-conv
output in units of ``min(2**i, 8)``, as pix2pix's ngf, 2ngf, 4ngf, 8ngf, 8ngf, ... The up-conv
of level ``i`` outputs level ``i-1``'s width, so each skip concatenation joins equal halves.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import ArchitectureError
from ..layers import LayerKit
from .base import ChannelGenerator


class UnetSkipConnectionBlock(nn.Module):
    """down (LeakyReLU, conv4x4 s2, norm) -> inner block -> up (ReLU, convT4x4 s2, norm), plus a skip."""

    def __init__(self, kit: LayerKit, outer_nc: int, inner_nc: int, input_nc: int,
                 submodule: nn.Module | None = None, outermost: bool = False, dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        innermost = submodule is None
        downconv = kit.conv(input_nc, inner_nc, 4, stride=2, padding=1)
        # In-place LeakyReLU also rewrites the skip input, exactly as the reference does.
        downrelu, uprelu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        if outermost:
            upconv = kit.conv_transpose(inner_nc * 2, outer_nc, 4, 2, 1, bias=True, concat_halves=True)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = kit.conv_transpose(inner_nc, outer_nc, 4, 2, 1)
            layers = [downrelu, downconv, uprelu, upconv, kit.norm_layer(outer_nc)]
        else:
            upconv = kit.conv_transpose(inner_nc * 2, outer_nc, 4, 2, 1, concat_halves=True)
            layers = [downrelu, downconv, kit.norm_layer(inner_nc), submodule, uprelu, upconv,
                      kit.norm_layer(outer_nc)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


def _convs(block: UnetSkipConnectionBlock) -> tuple[nn.Module, nn.Module]:
    down = block.model[0] if block.outermost else block.model[1]
    up = next(m for m in reversed(block.model) if isinstance(m, nn.ConvTranspose2d))
    return down, up


class UnetGenerator(ChannelGenerator):
    """U-Net with ``num_downs`` stride-2 levels (``unet_256``: 8, ``unet_128``: 7)."""

    arch = "unet"
    distill_concat_halves = True  # distilled block outputs are cat(skip, up) of equal halves

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, num_downs: int = 8,
                 norm: str = "batch", dropout: bool = False, conv_bias: bool | None = None,
                 config: Sequence[int] | None = None, elastic: bool = False):
        if num_downs < 5:
            raise ArchitectureError(f"unet needs num_downs >= 5 (got {num_downs}), as pix2pix's UnetGenerator")
        self.num_downs = num_downs
        self.input_nc, self.output_nc, self.norm, self.dropout = input_nc, output_nc, norm, bool(dropout)
        self.conv_bias = conv_bias  # None: as pytorch-CycleGAN-and-pix2pix sets it for the norm
        super().__init__(ngf, config, elastic)

    @property
    def downsample_factor(self) -> int:
        return 2 ** self.num_downs

    def build_model(self, widths: tuple[int, ...]) -> UnetSkipConnectionBlock:
        kit, w, block = LayerKit(self.norm, self.elastic, self.conv_bias), widths, None
        for level in range(self.num_downs - 1, 0, -1):
            use_dropout = self.dropout and 4 <= level <= self.num_downs - 2
            block = UnetSkipConnectionBlock(kit, w[level - 1], w[level], w[level - 1], block, dropout=use_dropout)
        return UnetSkipConnectionBlock(kit, self.output_nc, w[0], self.input_nc, block, outermost=True)

    def multipliers(self):
        return tuple(min(2 ** i, 8) for i in range(self.num_downs))

    def hparams(self) -> dict:
        return dict(input_nc=self.input_nc, output_nc=self.output_nc, ngf=self.ngf, num_downs=self.num_downs,
                    norm=self.norm, dropout=self.dropout, conv_bias=self.conv_bias)

    def levels(self) -> list[UnetSkipConnectionBlock]:
        """The blocks from the outermost (level 0) to the innermost."""
        blocks, block = [], self.model
        while block is not None:
            blocks.append(block)
            block = next((m for m in block.model if isinstance(m, UnetSkipConnectionBlock)), None)
        return blocks

    def slot_layers(self):
        levels = self.levels()
        slots: list[list[nn.Module]] = [[] for _ in levels]
        for i, block in enumerate(levels):
            down, up = _convs(block)
            slots[i].append(down)
            if i > 0:
                slots[i - 1].append(up)
        return slots

    def distill_layer_names(self) -> list[str]:
        """The outputs of the blocks at levels 1-4: skip plus up-path features at four resolutions."""
        names, prefix = [], "model"
        for _ in range(1, self.num_downs):
            prefix += ".model.1" if prefix == "model" else ".model.3"
            names.append(prefix)
        return names[:4]
