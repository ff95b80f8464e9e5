"""OMGD's deep teacher: the ResNet generator with a residual block after every down- and
up-sampling stage, so it sees more depth at each resolution than the wide teacher."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from ..errors import ArchitectureError
from ..layers import LayerKit
from .resnet import ResnetBlock, ResnetGenerator


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
        raise ArchitectureError("deep_resnet is not distilled from by name; OMGD distils channels from the wide teacher")
