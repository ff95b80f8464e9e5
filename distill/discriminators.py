"""Discriminators of pytorch-CycleGAN-and-pix2pix (PatchGAN and PixelGAN), registered by name.

Module tree and state-dict keys follow ``models/networks.py`` of junyanz/pytorch-CycleGAN-and-pix2pix
(``NLayerDiscriminator.model``, ``PixelDiscriminator.net``), so their ``latest_net_D.pth`` loads.
Registry names are pix2pix's ``--netD`` values: ``basic`` (70x70 PatchGAN), ``n_layers``, ``pixel``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from foundation.registry import Registry
from supernet.errors import ArchitectureError


def _batch(channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels, affine=True)


def _instance(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def _none(channels: int) -> nn.Module:
    return nn.Identity()


# name -> (layer builder, whether the convs before it carry a bias). As in pix2pix, only
# InstanceNorm (not affine) gets conv biases; "none" gets none either, exactly like the reference,
# so that its checkpoints keep their keys.
NORMS: dict[str, tuple[Callable[[int], nn.Module], bool]] = {
    "batch": (_batch, False),
    "instance": (_instance, True),
    "none": (_none, False),
}


def _norm(norm: str) -> tuple[Callable[[int], nn.Module], bool]:
    try:
        return NORMS[norm]
    except KeyError:
        raise ArchitectureError(f"unknown discriminator norm {norm!r}; choose one of {', '.join(NORMS)}") from None


def _conv_stack(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def receptive_field(module: nn.Module) -> int:
    """Input pixels (per side) seen by one output of a plain stack of convs: r <- (r - 1) * s + k."""
    field = 1
    for conv in reversed(_conv_stack(module)):
        field = (field - 1) * conv.stride[0] + conv.kernel_size[0]
    return field


class NLayerDiscriminator(nn.Module):
    """PatchGAN: conv4x4 s2 + LeakyReLU, (n_layers - 1) x [conv4x4 s2, norm, LeakyReLU],
    conv4x4 s1, norm, LeakyReLU, conv4x4 s1 -> one logit per patch (70x70 for n_layers 3)."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        if input_nc <= 0 or ndf <= 0 or n_layers < 0:
            raise ArchitectureError(
                f"NLayerDiscriminator needs input_nc > 0, ndf > 0 and n_layers >= 0 "
                f"(got input_nc={input_nc}, ndf={ndf}, n_layers={n_layers})"
            )
        norm_layer, bias = _norm(norm)
        self.input_nc, self.ndf, self.n_layers, self.norm = input_nc, ndf, n_layers, norm
        kw, padw = 4, 1
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, kw, stride=2, padding=padw, bias=bias),
                       norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, kw, stride=1, padding=padw, bias=bias),
                   norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, kw, stride=1, padding=padw))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """PixelGAN (1x1 receptive field): three 1x1 convs judging every pixel on its own."""

    def __init__(self, input_nc: int, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        if input_nc <= 0 or ndf <= 0:
            raise ArchitectureError(f"PixelDiscriminator needs input_nc > 0 and ndf > 0 (got {input_nc}, {ndf})")
        norm_layer, bias = _norm(norm)
        self.input_nc, self.ndf, self.norm = input_nc, ndf, norm
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), norm_layer(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x):
        return self.net(x)


@dataclass(frozen=True)
class DiscriminatorEntry:
    """A named discriminator builder: ``build(input_nc, ndf, n_layers, norm)``."""

    name: str
    build: Callable[[int, int, int, str], nn.Module]
    description: str


_DISCRIMINATORS: Registry[DiscriminatorEntry] = Registry("discriminator", ArchitectureError, key="name")
register_discriminator, list_discriminators, get_discriminator = (_DISCRIMINATORS.add, _DISCRIMINATORS.names,
                                                                  _DISCRIMINATORS.get)  # register, list, look up


def init_normal_(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """pix2pix's default init: conv/linear weights N(0, gain), biases 0; BatchNorm weights N(1, gain)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module


def create_discriminator(name: str, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
                         init_gain: float | None = 0.02) -> nn.Module:
    """Build discriminator ``name``; ``init_gain`` applies pix2pix's normal init (``None`` keeps PyTorch's).

    A pix2pix discriminator judges ``cat(input, output)`` (input_nc = in + out channels); a CycleGAN
    one judges an image alone.
    """
    module = get_discriminator(name).build(input_nc, ndf, n_layers, norm)
    return init_normal_(module, init_gain) if init_gain is not None else module


register_discriminator(DiscriminatorEntry(
    "basic", lambda c, ndf, n, norm: NLayerDiscriminator(c, ndf, 3, norm),
    "70x70 PatchGAN (NLayerDiscriminator with 3 layers), pix2pix and CycleGAN's default",
))
register_discriminator(DiscriminatorEntry(
    "n_layers", lambda c, ndf, n, norm: NLayerDiscriminator(c, ndf, n, norm),
    "PatchGAN with n_layers stride-2 convs (receptive field 16, 34, 70, 142, 286 for 1..5)",
))
register_discriminator(DiscriminatorEntry(
    "pixel", lambda c, ndf, n, norm: PixelDiscriminator(c, ndf, norm),
    "1x1 PixelGAN: judges colours per pixel, no spatial structure",
))
