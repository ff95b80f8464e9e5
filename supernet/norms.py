"""The norm layers a generator can be built with, registered by name.

Implementations of the same generator differ mostly here: pytorch-CycleGAN-and-pix2pix uses a
non-affine InstanceNorm (CycleGAN) or BatchNorm (pix2pix U-Net), others an affine InstanceNorm.
A variant says which layer it builds, which tensors that layer keeps in a state dict (how a
foreign checkpoint reveals its norm), whether it is affine (the papers count one MAC per element
for an affine norm, none otherwise) and whether convs before it carry a bias by default
(pytorch-CycleGAN-and-pix2pix: ``use_bias = norm is InstanceNorm``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from foundation.registry import Registry

from .elastic_ops import ElasticBatchNorm2d, ElasticInstanceNorm2d
from .errors import ArchitectureError

AFFINE = ("weight", "bias")
RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class NormVariant:
    """One norm layer kind: its plain and elastic classes, their options, and what follows from them."""

    name: str
    description: str
    layer: type[nn.Module]
    elastic_layer: type[nn.Module]
    options: dict = field(default_factory=dict)  # keyword arguments of both classes
    conv_bias: bool = True  # default bias of the convs it follows

    @property
    def affine(self) -> bool:
        return bool(self.options.get("affine", False))

    @property
    def running_stats(self) -> bool:
        return bool(self.options.get("track_running_stats", False))

    @property
    def state_keys(self) -> tuple[str, ...]:
        """The state-dict suffixes one layer of this variant holds, in PyTorch's order."""
        return (AFFINE if self.affine else ()) + (RUNNING_STATS if self.running_stats else ())

    def build(self, channels: int, elastic: bool = False) -> nn.Module:
        return (self.elastic_layer if elastic else self.layer)(channels, **self.options)


_NORMS: Registry[NormVariant] = Registry("norm", ArchitectureError, sort=False, key="name")
register_norm, list_norms, get_norm = _NORMS.add, _NORMS.names, _NORMS.get  # register, list, look up

for _variant in (
    NormVariant("instance", "InstanceNorm, not affine (pytorch-CycleGAN-and-pix2pix's CycleGAN generators)",
                nn.InstanceNorm2d, ElasticInstanceNorm2d, {"affine": False, "track_running_stats": False}, True),
    NormVariant("instance_affine", "InstanceNorm with a learned scale and shift per channel",
                nn.InstanceNorm2d, ElasticInstanceNorm2d, {"affine": True, "track_running_stats": False}, True),
    NormVariant("batch", "BatchNorm: batch statistics in training, running statistics in eval mode (pix2pix U-Net)",
                nn.BatchNorm2d, ElasticBatchNorm2d, {"affine": True, "track_running_stats": True}, False),
):
    register_norm(_variant)


def resolve_conv_bias(norm: str, conv_bias: bool | None) -> bool:
    """Whether convs followed by a ``norm`` layer carry a bias: as given, else the variant's default."""
    return get_norm(norm).conv_bias if conv_bias is None else bool(conv_bias)
