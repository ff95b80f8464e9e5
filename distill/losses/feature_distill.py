"""GAN Compression's feature distillation: MSE between mapped student and teacher features.

For each distilled layer a learned 1x1 conv (with bias, pix2pix's N(0, 0.02) init, as
``networks.init_net(netA)`` in mit-han-lab/gan-compression ``distillers/base_resnet_distiller.py``)
maps the student's width to the teacher's; the loss is the sum over layers of
MSE(mapping(student feature), teacher feature). The mapping is elastic on its input (GAN
Compression's ``SuperConv2d``), so every subnet of a supernet shares it: a narrower student
feature uses the first input channels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .features import DistillLayer, LayerwiseDistiller, elastic_mapping


class FeatureDistiller(LayerwiseDistiller):
    """sum over layers of MSE(1x1 conv(student feature), teacher feature)."""

    def __init__(self, layers, init_gain: float = 0.02):
        self.init_gain = init_gain
        super().__init__(layers)

    def build_mapping(self, layer: DistillLayer) -> nn.Module:
        conv = elastic_mapping(layer, bias=True)
        nn.init.normal_(conv.weight, 0.0, self.init_gain)
        nn.init.zeros_(conv.bias)
        return conv

    def layer_loss(self, mapped: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(mapped, teacher)
