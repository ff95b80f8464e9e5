"""Architectures registered by name; the CLI and the tests enumerate this registry."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Sequence

from foundation.registry import Registry

from .errors import ArchitectureError
from .generators import (ChannelGenerator, DeepResnetGenerator, DeepUnetGenerator, MobileResnetGenerator,
                         MobileSpadeGenerator, ResnetGenerator, SpadeGenerator, UnetGenerator)


@dataclass(frozen=True)
class ArchitectureEntry:
    """A named generator builder: its class, default arguments and default search space."""

    name: str
    generator_class: type[ChannelGenerator]
    description: str
    defaults: dict = field(default_factory=dict)
    default_space: str | None = None

    @property
    def family(self) -> str:
        return self.generator_class.arch

    def parameters(self) -> list[str]:
        names = inspect.signature(self.generator_class.__init__).parameters
        return [n for n in names if n not in ("self", "config", "elastic")]


_ARCHITECTURES: Registry[ArchitectureEntry] = Registry("architecture", ArchitectureError, key="name")
register_architecture, list_architectures, get_architecture = (_ARCHITECTURES.add, _ARCHITECTURES.names,
                                                              _ARCHITECTURES.get)  # register, list, look up


def create_generator(name: str, config: Sequence[int] | None = None, elastic: bool = False,
                     **kwargs) -> ChannelGenerator:
    """Build architecture ``name``: static at ``config`` (default: full width), or elastic."""
    entry = get_architecture(name)
    allowed = entry.parameters()
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ArchitectureError(f"{name} does not take {', '.join(unknown)}; it takes {', '.join(allowed)}")
    arguments = {**entry.defaults, **{k: v for k, v in kwargs.items() if v is not None}}
    return entry.generator_class(config=config, elastic=elastic, **arguments)


for _entry in (
    ArchitectureEntry("resnet", ResnetGenerator, "CycleGAN / ResNet-pix2pix generator (ngf 64, 9 blocks)",
                      default_space="channels-64-cycleGAN"),
    ArchitectureEntry("resnet_9blocks", ResnetGenerator, "pytorch-CycleGAN-and-pix2pix name for resnet",
                      {"n_blocks": 9}, "channels-64-cycleGAN"),
    ArchitectureEntry("resnet_6blocks", ResnetGenerator, "pytorch-CycleGAN-and-pix2pix ResNet, 6 blocks",
                      {"n_blocks": 6}, "channels-64-cycleGAN"),
    ArchitectureEntry("mobile_resnet", MobileResnetGenerator,
                      "GAN Compression mobile ResNet (separable convs in the blocks)",
                      default_space="channels-64-cycleGAN"),
    ArchitectureEntry("deep_resnet", DeepResnetGenerator,
                      "OMGD deep teacher: ResNet with a residual block after every down/up-sampling stage"),
    ArchitectureEntry("deep_unet", DeepUnetGenerator,
                      "OMGD deep teacher (unet_deepest): U-Net with expansion residual blocks at every outer level"),
    ArchitectureEntry("unet", UnetGenerator, "pix2pix U-Net (unet_256: 8 levels, BatchNorm)",
                      default_space="unet256-channels-64"),
    ArchitectureEntry("unet_256", UnetGenerator, "pytorch-CycleGAN-and-pix2pix name for unet",
                      {"num_downs": 8}, "unet256-channels-64"),
    ArchitectureEntry("unet_128", UnetGenerator, "pix2pix U-Net with 7 levels", {"num_downs": 7},
                      "unet128-channels-64"),
    ArchitectureEntry("spade", SpadeGenerator, "GauGAN / NVlabs SPADE generator (spectral norm, 128 SPADE hidden "
                                               "channels), one-hot label map in"),
    ArchitectureEntry("mobile_spade", MobileSpadeGenerator,
                      "GAN Compression mobile SPADE (separable gamma/beta convs, hidden = 2 x config)",
                      default_space="spade-channels-48"),
):
    register_architecture(_entry)
