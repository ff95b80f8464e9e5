"""Layer construction shared by all generators: plain or elastic, with a chosen norm."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .elastic_ops import ElasticConv2d, ElasticConvTranspose2d
from .errors import ArchitectureError
from .norms import get_norm, resolve_conv_bias

PADDINGS = ("reflect", "replicate", "zero")


@dataclass(frozen=True)
class LayerKit:
    """Builds convs and norms, plain (for static generators) or elastic (for supernets).

    ``norm`` names a registered variant (:mod:`supernet.norms`); convs followed by a norm carry a
    bias when ``conv_bias`` says so, by default as pytorch-CycleGAN-and-pix2pix sets it for that norm.
    """

    norm: str = "instance"
    elastic: bool = False
    conv_bias: bool | None = None

    def __post_init__(self):
        get_norm(self.norm)  # an unknown name lists the registered ones

    @property
    def use_bias(self) -> bool:
        return resolve_conv_bias(self.norm, self.conv_bias)

    def conv(self, cin, cout, kernel_size, stride=1, padding=0, bias=None, groups=1, concat_halves=False):
        bias = self.use_bias if bias is None else bias
        if self.elastic:
            return ElasticConv2d(cin, cout, kernel_size, stride, padding, groups=groups, bias=bias,
                                 concat_halves=concat_halves)
        return nn.Conv2d(cin, cout, kernel_size, stride, padding, groups=groups, bias=bias)

    def conv_transpose(self, cin, cout, kernel_size, stride, padding, output_padding=0, bias=None,
                       concat_halves=False):
        bias = self.use_bias if bias is None else bias
        if self.elastic:
            return ElasticConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding,
                                          bias=bias, concat_halves=concat_halves)
        return nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding, bias=bias)

    def norm_layer(self, channels: int) -> nn.Module:
        return get_norm(self.norm).build(channels, self.elastic)


def padding_layers(padding_type: str, amount: int) -> tuple[list[nn.Module], int]:
    """The explicit padding module (if any) and the conv's own padding for ``padding_type``."""
    if padding_type == "reflect":
        return [nn.ReflectionPad2d(amount)], 0
    if padding_type == "replicate":
        return [nn.ReplicationPad2d(amount)], 0
    if padding_type == "zero":
        return [], amount
    raise ArchitectureError(f"unknown padding type {padding_type!r}; choose one of {', '.join(PADDINGS)}")


class SeparableConv2d(nn.Module):
    """Depthwise kxk conv -> InstanceNorm -> pointwise 1x1 conv, as GAN Compression's.

    Its inner norm is always a (stateless) InstanceNorm and its convs carry a bias when the
    generator's convs do: GAN Compression's block never passes its norm layer in, and passes
    ``use_bias`` from it, so its BatchNorm checkpoints have exactly these keys.
    """

    def __init__(self, kit: LayerKit, cin: int, cout: int, kernel_size: int = 3, padding: int = 0):
        super().__init__()
        inner = LayerKit("instance", kit.elastic)
        self.conv = nn.Sequential(
            kit.conv(cin, cin, kernel_size, padding=padding, groups=cin, bias=kit.use_bias),
            inner.norm_layer(cin),
            kit.conv(cin, cout, 1, bias=kit.use_bias),
        )

    def forward(self, x):
        return self.conv(x)
