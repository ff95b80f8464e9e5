"""OMGD's channel distillation: match per-channel attention (globally pooled activations).

Follows bytedance/OMGD ``distillers/base_multiteacher_distiller.py`` (``build_feature_connector``)
and ``distillers/multiteacher_distiller.py`` (``calc_CD_loss``): per distilled layer the
student feature goes through 1x1 conv (no bias) -> BatchNorm -> ReLU to the teacher's width;
both sides are averaged over H and W (the teacher's raw activation, detached, with no further
normalisation); the loss is the MSE of the two (N, C) vectors, summed over layers. The conv is
initialised N(0, sqrt(2 / (k * k * out_channels))), the BatchNorm to weight 1, bias 0, as there.
The conv is elastic on its input, so a narrower student feature uses the first input channels.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .features import DistillLayer, LayerwiseDistiller, elastic_mapping


def channel_attention(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C): global average pooling, OMGD's per-channel attention weight."""
    return x.mean(dim=(2, 3))


class ChannelDistiller(LayerwiseDistiller):
    """sum over layers of MSE(GAP(ReLU(BN(1x1 conv(student)))), GAP(teacher))."""

    same_spatial_size = False

    def build_mapping(self, layer: DistillLayer) -> nn.Module:
        conv = elastic_mapping(layer, bias=False)
        fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels
        nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan_out))
        norm = nn.BatchNorm2d(layer.teacher_channels)
        nn.init.ones_(norm.weight)
        nn.init.zeros_(norm.bias)
        return nn.Sequential(conv, norm, nn.ReLU(inplace=True))

    def layer_loss(self, mapped: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(channel_attention(mapped), channel_attention(teacher))
