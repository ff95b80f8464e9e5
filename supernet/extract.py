"""Turn a supernet at one config into a plain static generator with copied weights."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .elastic_ops import ElasticConv2d, ElasticConvTranspose2d
from .generators import ChannelGenerator
from .registry import create_generator


def _input_dim(module: nn.Module) -> int | None:
    """The weight dimension holding input channels, for convs that slice their input."""
    if isinstance(module, nn.ConvTranspose2d):
        return 0
    if isinstance(module, nn.Conv2d) and module.groups == 1:
        return 1
    return None


def _slice(full: torch.Tensor, shape: torch.Size, halves_dim: int | None) -> torch.Tensor:
    out = full
    for dim, (have, want) in enumerate(zip(full.shape, shape)):
        if have == want:
            continue
        if dim == halves_dim:  # keep the first want/2 channels of each concatenated half
            first = torch.arange(want // 2)
            out = out.index_select(dim, torch.cat([first, first + have // 2]))
        else:
            out = out.narrow(dim, 0, want)
    return out


@torch.no_grad()
def extract_subnet(supernet: ChannelGenerator, config: Sequence[int]) -> ChannelGenerator:
    """A static generator at ``config`` whose output equals ``supernet`` run at ``config``."""
    config = supernet.validate_config(config)
    subnet = create_generator(supernet.arch, config=config, **supernet.hparams())
    super_modules = dict(supernet.named_modules())
    for name, module in subnet.named_modules():
        source = super_modules[name]
        halves = isinstance(source, (ElasticConv2d, ElasticConvTranspose2d)) and source.concat_halves
        halves_dim = _input_dim(module) if halves else None
        for key, tensor in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            # only a weight has an input dimension: a transposed conv's bias (dim 0) holds its outputs
            tensor.copy_(_slice(getattr(source, key), tensor.shape, halves_dim if key == "weight" else None))
    subnet.train(supernet.training)
    return subnet
