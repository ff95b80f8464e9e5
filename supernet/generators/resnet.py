"""ResNet generators: CycleGAN / ResNet-pix2pix, and GAN Compression's mobile variant.

Module tree and state-dict keys follow pytorch-CycleGAN-and-pix2pix's ``ResnetGenerator``
(one ``nn.Sequential`` named ``model``) and GAN Compression's ``MobileResnetGenerator``,
so their checkpoints load unchanged.
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from ..errors import ArchitectureError
from ..layers import LayerKit, SeparableConv2d, padding_layers
from .base import ChannelGenerator

STEM = 4  # modules in the stem: pad, conv, norm, relu
DOWN = 3  # modules per down/up-sampling stage: conv, norm, relu


def block_groups(n_blocks: int) -> list[int]:
    """Group (0, 1, 2) of each residual block; GAN Compression's split n//3, n//3, rest."""
    n1 = n_blocks // 3
    return [0] * n1 + [1] * n1 + [2] * (n_blocks - 2 * n1)


class ResnetBlock(nn.Module):
    """pad -> conv3x3 -> norm -> relu -> (dropout) -> pad -> conv3x3 -> norm, plus the input."""

    def __init__(self, kit: LayerKit, dim: int, hidden: int, padding_type: str, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        pad, p = padding_layers(padding_type, 1)
        layers += pad + [kit.conv(dim, hidden, 3, padding=p), kit.norm_layer(hidden), nn.ReLU(True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        pad, p = padding_layers(padding_type, 1)
        layers += pad + [kit.conv(hidden, dim, 3, padding=p), kit.norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)

    def convs(self) -> list[nn.Module]:
        return [m for m in self.conv_block if isinstance(m, nn.Conv2d)]

    def forward(self, x):
        return x + self.conv_block(x)


class MobileResnetBlock(nn.Module):
    """The residual block with each 3x3 conv replaced by a separable conv (GAN Compression)."""

    def __init__(self, kit: LayerKit, dim: int, hidden: int, padding_type: str, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        pad, p = padding_layers(padding_type, 1)
        layers += pad + [SeparableConv2d(kit, dim, hidden, 3, p), kit.norm_layer(hidden), nn.ReLU(True)]
        layers.append(nn.Dropout(dropout))  # always present, as in GAN Compression's layout
        pad, p = padding_layers(padding_type, 1)
        layers += pad + [SeparableConv2d(kit, hidden, dim, 3, p), kit.norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)

    def convs(self) -> list[nn.Module]:
        """The pointwise convs: they set the block's hidden and output widths."""
        return [m.conv[2] for m in self.conv_block if isinstance(m, SeparableConv2d)]

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(ChannelGenerator):
    """Stem 7x7 -> 2 stride-2 convs -> residual blocks -> 2 transposed convs -> 7x7 -> tanh.

    Config positions (GAN Compression): c0 stem, c1 down 1 (x2), c2 down 2 = trunk (x4),
    c3..c5 hidden width of block groups 1..3 (x4), c6 up 1 (x2), c7 up 2 (x1).
    """

    arch = "resnet"
    block_class = ResnetBlock
    downsample_factor = 4
    distill_concat_halves = False  # distilled features are plain trunk tensors

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "instance", dropout: float = 0.0, padding_type: str = "reflect",
                 conv_bias: bool | None = None, config: Sequence[int] | None = None, elastic: bool = False):
        if n_blocks < 0 or (elastic and n_blocks < 3):
            raise ArchitectureError(
                f"{self.arch} needs n_blocks >= {3 if elastic else 0} (got {n_blocks}); an elastic "
                "generator splits its blocks into three groups, one per config position c3..c5"
            )
        if isinstance(dropout, bool):
            dropout = 0.5 if dropout else 0.0
        self.input_nc, self.output_nc, self.n_blocks = input_nc, output_nc, n_blocks
        self.norm, self.dropout, self.padding_type = norm, float(dropout), padding_type
        self.conv_bias = conv_bias  # None: as pytorch-CycleGAN-and-pix2pix sets it for the norm
        super().__init__(ngf, config, elastic)

    def build_model(self, widths: tuple[int, ...]) -> nn.Sequential:
        kit, w = LayerKit(self.norm, self.elastic, self.conv_bias), widths
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), kit.conv(self.input_nc, w[0], 7), kit.norm_layer(w[0]),
                                   nn.ReLU(True)]
        layers += [kit.conv(w[0], w[1], 3, stride=2, padding=1), kit.norm_layer(w[1]), nn.ReLU(True)]
        layers += [kit.conv(w[1], w[2], 3, stride=2, padding=1), kit.norm_layer(w[2]), nn.ReLU(True)]
        for group in block_groups(self.n_blocks):
            layers.append(self.block_class(kit, w[2], w[3 + group], self.padding_type, self.dropout))
        layers += [kit.conv_transpose(w[2], w[6], 3, 2, 1, 1), kit.norm_layer(w[6]), nn.ReLU(True)]
        layers += [kit.conv_transpose(w[6], w[7], 3, 2, 1, 1), kit.norm_layer(w[7]), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), kit.conv(w[7], self.output_nc, 7, bias=True), nn.Tanh()]
        return nn.Sequential(*layers)

    def multipliers(self):
        return (1, 2, 4, 4, 4, 4, 2, 1)

    def hparams(self) -> dict:
        return dict(input_nc=self.input_nc, output_nc=self.output_nc, ngf=self.ngf, n_blocks=self.n_blocks,
                    norm=self.norm, dropout=self.dropout, padding_type=self.padding_type, conv_bias=self.conv_bias)

    def blocks(self) -> list[nn.Module]:
        return list(self.model[STEM + 2 * DOWN: STEM + 2 * DOWN + self.n_blocks])

    def slot_layers(self):
        m, n = self.model, self.n_blocks
        up = STEM + 2 * DOWN + n
        slots: list[list[nn.Module]] = [[m[1]], [m[4]], [m[7]], [], [], [], [m[up]], [m[up + DOWN]]]
        for block, group in zip(self.blocks(), block_groups(n)):
            first, second = block.convs()
            slots[3 + group].append(first)
            slots[2].append(second)  # the block writes back into the trunk
        return slots

    def distill_layer_names(self) -> list[str]:
        """GAN Compression's distilled layers: the trunk after down-sampling and after every third block."""
        start = STEM + 2 * DOWN
        names = [f"model.{start - 1}"]
        names += [f"model.{start + i}" for i in range(self.n_blocks) if (i + 1) % 3 == 0]
        return names


class MobileResnetGenerator(ResnetGenerator):
    """GAN Compression's mobile ResNet generator: separable convs inside the residual blocks."""

    arch = "mobile_resnet"
    block_class = MobileResnetBlock
