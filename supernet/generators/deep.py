"""OMGD's deep teachers: more depth at each resolution than the wide teacher.

``deep_resnet``: the ResNet generator with a residual block after every down- and up-sampling stage.
``deep_unet``: OMGD's ``unet_deepest``, the U-Net with two expansion residual blocks after the
down-sampling and two after the up-sampling output of every level but the innermost (at the
outermost level, before its up-sampling, on the skip concatenation).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import ArchitectureError
from ..layers import LayerKit, padding_layers
from .resnet import ResnetBlock, ResnetGenerator
from .unet import UnetGenerator

EXPANSION = 4  # hidden width of an expansion block, x its width
STAGE_BLOCKS = 2  # expansion blocks per stage (OMGD's ``for i in range(2)``)


class DeepResnetGenerator(ResnetGenerator):
    """Stem -> [down-conv, residual block] x2 -> blocks -> [up-conv, residual block] x2 -> 7x7 -> tanh.

    OMGD inserts expansion blocks at each stage; ganas uses the generator's own residual block
    type there (a plain 3x3 block), which keeps the teacher a standard, exportable network.
    Teachers are static: this architecture has no elastic version.
    """

    arch = "deep_resnet"

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "instance", dropout: float = 0.0, padding_type: str = "reflect",
                 conv_bias: bool | None = None, config: Sequence[int] | None = None, elastic: bool = False):
        if elastic:
            raise ArchitectureError("deep_resnet is a teacher architecture and has no elastic version")
        super().__init__(input_nc, output_nc, ngf, n_blocks, norm, dropout, padding_type, conv_bias, config, False)

    def build_model(self, widths: tuple[int, ...]) -> nn.Sequential:
        kit, w = LayerKit(self.norm, False, self.conv_bias), widths
        layers = list(super().build_model(widths))
        stage = lambda width: ResnetBlock(kit, width, width, self.padding_type, self.dropout)  # noqa: E731
        # insert from the back so earlier indices stay valid: after up 2, up 1, down 2, down 1
        up1_end = 10 + self.n_blocks + 3
        up2_end = up1_end + 3
        layers.insert(up2_end, stage(w[7]))
        layers.insert(up1_end, stage(w[6]))
        layers.insert(10, stage(w[2]))
        layers.insert(7, stage(w[1]))
        return nn.Sequential(*layers)

    def slot_layers(self):
        raise ArchitectureError("deep_resnet has no elastic version")

    def distill_layer_names(self) -> list[str]:
        """None: OMGD distils channels from the wide teacher only. When deep_resnet is a supernet's recorded teacher (an
        OMGD run with ``--teachers deep``), fine-tuning distils its outputs only, as from a program teacher."""
        return []


class ExpansionBlock(nn.Module):
    """OMGD's U-Net residual block: pad, 1x1 d->4d, norm, ReLU, 3x3 4d->4d, norm, ReLU, 1x1 4d->d, norm, ReLU,
    dropout, pad, 3x3 d->d, norm; plus the input. As OMGD's, the first padding comes before the 1x1 conv (which
    runs on the padded map) and the 3x3 conv after it is unpadded; module indices match its state-dict keys."""

    def __init__(self, kit: LayerKit, dim: int, dropout: float, padding_type: str = "reflect"):
        super().__init__()
        hidden = EXPANSION * dim
        pad, p = padding_layers(padding_type, 1)
        layers = pad + [kit.conv(dim, hidden, 1), kit.norm_layer(hidden), nn.ReLU(True),
                        kit.conv(hidden, hidden, 3, padding=p), kit.norm_layer(hidden), nn.ReLU(True),
                        kit.conv(hidden, dim, 1), kit.norm_layer(dim), nn.ReLU(True), nn.Dropout(dropout)]
        pad, p = padding_layers(padding_type, 1)
        layers += pad + [kit.conv(dim, dim, 3, padding=p), kit.norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class DeepUnetBlock(nn.Module):
    """One U-Net level of ``deep_unet``: the U-Net level's layers with expansion blocks around its submodule."""

    def __init__(self, kit: LayerKit, outer_nc: int, inner_nc: int, input_nc: int, submodule: nn.Module | None,
                 dropout: float, outermost: bool = False):
        super().__init__()
        self.outermost = outermost
        down = kit.conv(input_nc, inner_nc, 4, stride=2, padding=1)
        stage = lambda width: [ExpansionBlock(kit, width, dropout) for _ in range(STAGE_BLOCKS)]  # noqa: E731
        if outermost:
            up = kit.conv_transpose(inner_nc * 2, outer_nc, 4, 2, 1, bias=True)
            layers = [down, *stage(inner_nc), submodule, *stage(inner_nc * 2), nn.ReLU(True), up, nn.Tanh()]
        elif submodule is None:  # innermost: as the U-Net's
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), kit.conv_transpose(inner_nc, outer_nc, 4, 2, 1),
                      kit.norm_layer(outer_nc)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, kit.norm_layer(inner_nc), *stage(inner_nc), submodule,
                      nn.ReLU(True), kit.conv_transpose(inner_nc * 2, outer_nc, 4, 2, 1), kit.norm_layer(outer_nc),
                      *stage(outer_nc), nn.Dropout(dropout)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class DeepUnetGenerator(UnetGenerator):
    """OMGD's ``unet_deepest``: a U-Net (same levels and widths) with expansion blocks at every non-innermost level.

    ``dropout`` sets the rate of every block's dropout and of each middle level's output (0.5, as pix2pix's
    U-Net dropout, else 0). Teachers are static: this architecture has no elastic version.
    """

    arch = "deep_unet"

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, num_downs: int = 8,
                 norm: str = "batch", dropout: bool = False, conv_bias: bool | None = None,
                 config: Sequence[int] | None = None, elastic: bool = False):
        if elastic:
            raise ArchitectureError("deep_unet is a teacher architecture and has no elastic version")
        super().__init__(input_nc, output_nc, ngf, num_downs, norm, dropout, conv_bias, config, False)

    def build_model(self, widths: tuple[int, ...]) -> DeepUnetBlock:
        kit, w, block = LayerKit(self.norm, False, self.conv_bias), widths, None
        rate = 0.5 if self.dropout else 0.0
        for level in range(self.num_downs - 1, 0, -1):
            block = DeepUnetBlock(kit, w[level - 1], w[level], w[level - 1], block, rate)
        return DeepUnetBlock(kit, self.output_nc, w[0], self.input_nc, block, rate, outermost=True)

    def levels(self):
        raise ArchitectureError("deep_unet has no elastic version")

    def slot_layers(self):
        raise ArchitectureError("deep_unet has no elastic version")

    def distill_layer_names(self) -> list[str]:
        """None: OMGD distils channels from the wide teacher only. When deep_unet is a supernet's recorded teacher (an
        OMGD run with ``--teachers deep``), fine-tuning distils its outputs only, as from a program teacher."""
        return []
