"""SPADE normalisation and the SPADE residual block, in NVlabs/SPADE's module layout.

Module and tensor names follow NVlabs/SPADE (``models/networks/normalization.py`` SPADE,
``architecture.py`` SPADEResnetBlock) and GAN Compression's mobile variant (``MobileSPADE``: the
gamma and beta convs separable), so both implementations' state dicts load with their own keys.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..elastic_ops import ElasticBatchNorm2d, ElasticInstanceNorm2d
from ..errors import ArchitectureError
from ..layers import LayerKit, SeparableConv2d

PARAM_FREE_NORMS = ("batch", "instance")  # NVlabs's syncbatch is batch norm on one process
LEAK = 0.2  # NVlabs's actvn: leaky_relu(x, 2e-1)


@dataclass(frozen=True)
class SpadeOptions:
    """What every SPADE layer of one generator shares."""

    semantic_nc: int  # label channels (+ dontcare) (+ instance edges)
    param_free_norm: str = "batch"
    mobile: bool = False  # gamma/beta as separable convs (GAN Compression's MobileSPADE)
    spectral: bool = False  # spectral norm on the block convs (NVlabs's 'spectral' norm_G prefix)
    elastic: bool = False

    def __post_init__(self):
        if self.param_free_norm not in PARAM_FREE_NORMS:
            raise ArchitectureError(f"unknown SPADE parameter-free norm {self.param_free_norm!r}; choose one of "
                                    f"{', '.join(PARAM_FREE_NORMS)} (NVlabs's syncbatch is batch on one process)")
        if self.spectral and self.elastic:
            raise ArchitectureError(
                "an elastic SPADE supernet holds plain weights (spectral=False): its subnets slice the "
                "spectrally normalised weights of the teacher (SpadeGenerator.without_spectral_norm), as GAN "
                "Compression's remove_spectral_norm does")

    @property
    def kit(self) -> LayerKit:
        return LayerKit("instance", self.elastic, conv_bias=True)  # SPADE's convs all carry a bias

    def conv(self, cin: int, cout: int, kernel_size: int, bias: bool = True) -> nn.Module:
        conv = self.kit.conv(cin, cout, kernel_size, padding=kernel_size // 2, bias=bias)
        return nn.utils.spectral_norm(conv) if self.spectral else conv


class SpadeModulation(nn.Module):
    """``normalized * (1 + gamma) + beta``: an affine norm whose scale and shift vary per pixel.

    A module of its own so MACs counting sees it: one MAC per element, as an affine norm's.
    """

    def forward(self, normalized: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return normalized * (1 + gamma) + beta


class Spade(nn.Module):
    """Parameter-free norm of ``x``, then gamma and beta from the label map resized to ``x`` (nearest):
    a shared 3x3 conv to ``hidden`` channels, ReLU, and a 3x3 conv (separable when mobile) each."""

    def __init__(self, options: SpadeOptions, norm_nc: int, hidden: int):
        super().__init__()
        if options.param_free_norm == "batch":
            self.param_free_norm = (ElasticBatchNorm2d if options.elastic else nn.BatchNorm2d)(norm_nc, affine=False)
        else:
            self.param_free_norm = (ElasticInstanceNorm2d if options.elastic else nn.InstanceNorm2d)(norm_nc,
                                                                                                     affine=False)
        kit = options.kit
        self.mlp_shared = nn.Sequential(kit.conv(options.semantic_nc, hidden, 3, padding=1), nn.ReLU())
        if options.mobile:
            self.mlp_gamma = SeparableConv2d(kit, hidden, norm_nc, 3, 1)
            self.mlp_beta = SeparableConv2d(kit, hidden, norm_nc, 3, 1)
        else:
            self.mlp_gamma = kit.conv(hidden, norm_nc, 3, padding=1)
            self.mlp_beta = kit.conv(hidden, norm_nc, 3, padding=1)
        self.modulate = SpadeModulation()

    def output_convs(self) -> list[nn.Module]:
        """The convs writing gamma and beta: their width is the normalised tensor's."""
        return [m.conv[2] if isinstance(m, SeparableConv2d) else m for m in (self.mlp_gamma, self.mlp_beta)]

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return self.modulate(normalized, self.mlp_gamma(actv), self.mlp_beta(actv))


class SpadeResnetBlock(nn.Module):
    """SPADE -> leaky ReLU -> conv_0 -> SPADE -> leaky ReLU -> conv_1, plus the shortcut.

    ``learned_shortcut`` (SPADE -> 1x1 conv without bias) is fixed by the block's place in the full
    network (NVlabs: where fin != fout), not by a subnet's widths, which may happen to be equal.
    """

    def __init__(self, options: SpadeOptions, fin: int, fout: int, fmiddle: int, hidden: int,
                 learned_shortcut: bool):
        super().__init__()
        self.learned_shortcut = learned_shortcut
        self.conv_0 = options.conv(fin, fmiddle, 3)
        self.conv_1 = options.conv(fmiddle, fout, 3)
        if learned_shortcut:
            self.conv_s = options.conv(fin, fout, 1, bias=False)
        self.norm_0 = Spade(options, fin, hidden)
        self.norm_1 = Spade(options, fmiddle, hidden)
        if learned_shortcut:
            self.norm_s = Spade(options, fin, hidden)

    def norms(self) -> list[Spade]:
        return [self.norm_0, self.norm_1] + ([self.norm_s] if self.learned_shortcut else [])

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), LEAK))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), LEAK))
        return x_s + dx
