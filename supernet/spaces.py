"""The registered search spaces: GAN Compression's for the ResNet and SPADE families, and U-Net ones."""
from __future__ import annotations

from foundation.registry import Registry

from .errors import SearchSpaceError
from .space import ChannelSearchSpace

RESNET_POSITIONS = ("stem", "down1", "trunk", "blocks1", "blocks2", "blocks3", "up1", "up2")

_SPACES: Registry[ChannelSearchSpace] = Registry("search space", SearchSpaceError, key="name")
register_space, list_spaces, get_space = _SPACES.add, _SPACES.names, _SPACES.get  # register, list, look up


def _resnet(name: str, choices: list[tuple[int, ...]], description: str) -> None:
    register_space(ChannelSearchSpace(name, "resnet", tuple(choices), RESNET_POSITIONS, description,
                                      architecture="mobile_resnet"))


def _unet(name: str, num_downs: int, choices: tuple[int, ...], description: str) -> None:
    positions = tuple(f"level{i}" for i in range(num_downs))
    register_space(ChannelSearchSpace(name, "unet", (choices,) * num_downs, positions, description,
                                      architecture="unet", hparams={"num_downs": num_downs}))


_resnet("channels-64-cycleGAN", [(64, 48, 32, 24, 16)] * 8, "GAN Compression, CycleGAN (5^8 subnets)")
_resnet("channels-64-pix2pix", [(64, 56, 48, 40, 32, 24, 16)] * 8, "GAN Compression, pix2pix (7^8 subnets)")
_resnet("channels-48", [(48, 32), (48, 32), (48, 40, 32), (48, 40, 32), (48, 40, 32), (48, 40, 32),
                        (48, 32, 24, 16), (48, 32, 24, 16)], "GAN Compression, ngf-48 supernets")
_resnet("channels-32", [(32, 24, 16)] * 8, "GAN Compression, ngf-32 supernets (3^8 subnets)")
_resnet("channels-16", [(16, 12, 8)] * 8, "ganas: tiny supernets for CPU demos and tests (3^8 subnets)")
_unet("unet256-channels-64", 8, (64, 48, 32, 24, 16), "ganas: U-Net 256 (8 levels), level widths x1,2,4,8,...")
_unet("unet128-channels-64", 7, (64, 48, 32, 24, 16), "ganas: U-Net 128 (7 levels)")
_unet("unet64-channels-32", 6, (32, 24, 16, 8), "ganas: U-Net 64 (6 levels), for small images")
_unet("unet32-channels-16", 5, (16, 12, 8), "ganas: U-Net 32 (5 levels), for tiny images and tests")

SPADE_POSITIONS = ("fc", "head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3")


def _spade(name: str, choices: list[tuple[int, ...]], description: str) -> None:
    register_space(ChannelSearchSpace(f"spade-{name}", "spade", tuple(choices), SPADE_POSITIONS, description,
                                      architecture="mobile_spade"))


# GAN Compression's configs/spade_configs.py, under its names prefixed with spade- (channels-48 is a ResNet space)
_spade("channels-48", [(48, 40, 32)] * 5 + [(48, 40, 32, 24)] * 3, "GAN Compression, GauGAN ngf-48 supernets")
_spade("channels-64", [(64, 48, 40, 32)] * 5 + [(64, 48, 40, 32, 24)] * 3, "GAN Compression, GauGAN ngf-64 supernets")
_spade("channels-64-coco", [(64, 48, 40, 32, 24)] * 8, "GAN Compression, GauGAN on COCO-Stuff (5^8 subnets)")

TEACHER_FAMILIES = {"resnet": "resnet", "mobile_resnet": "resnet", "unet": "unet",  # teacher arch -> space family
                    "spade": "spade", "mobile_spade": "spade"}


def space_for_teacher(arch: str, hparams: dict) -> ChannelSearchSpace:
    """The space a supernet distilled from a ``arch`` teacher defaults to: of the teacher's family (and, for a
    U-Net, its depth), the widest that is not wider than the teacher; among equally wide, the finer grid."""
    family = TEACHER_FAMILIES.get(arch)
    if family is None:
        raise SearchSpaceError(f"no search space is registered for {arch} teachers; give --space (ganas space list)")
    fits = [s for s in _SPACES.values() if s.family == family
            and s.hparams.get("num_downs", hparams.get("num_downs")) == hparams.get("num_downs")]
    if not fits:
        depths = sorted({s.hparams["num_downs"] for s in _SPACES.values() if s.family == family})
        raise SearchSpaceError(f"no {family} search space has the teacher's {hparams.get('num_downs')} levels (spaces "
                               f"exist for {', '.join(map(str, depths))}); register one (supernet.spaces.register_space)")
    narrower = [s for s in fits if s.ngf <= hparams.get("ngf", 0)] or [min(fits, key=lambda s: s.ngf)]
    return max(narrower, key=lambda s: (s.ngf, s.size))
