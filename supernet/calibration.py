"""BatchNorm recalibration: a subnet's running statistics re-estimated before it is evaluated.

Subnets of a supernet share its BatchNorm statistics, which training accumulated over many widths; a
narrower subnet sees other activation statistics, so its eval-mode output is off until they are
re-estimated on a few training batches (GAN Compression's ``calibrate`` for SPADE supernets; once-for-all's
``set_running_statistics``). Here the statistics are the exact average over the batches given (momentum
None), where GAN Compression takes its first batch's and then averages exponentially: with its 256 images
both estimate the same statistics, and the exact average does not depend on the batches' order.
"""
from __future__ import annotations

import contextlib
import itertools
from typing import Iterable, Sequence

import torch
from torch import nn

from .errors import ConfigError


@torch.no_grad()
def recalibrate_batchnorm(generator: nn.Module, batches: Iterable[torch.Tensor],
                          config: Sequence[int] | None = None) -> int:
    """Re-estimate the running statistics of every BatchNorm in ``generator`` (a subnet, or a supernet at
    ``config``) from the inputs in ``batches``; returns how many batches it saw (0: no BatchNorm to calibrate).

    The BatchNorms run in training mode and everything else in eval mode (no dropout, no spectral-norm power
    iteration); modes and momenta are restored afterwards, also after an error.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    batches = iter(batches)
    first = next(batches, None)
    if first is None:  # refused before the statistics are reset
        raise ConfigError("BatchNorm recalibration got no batches; give it at least one batch of training inputs")
    modes = {m: m.training for m in generator.modules()}
    momenta = {m: m.momentum for m in norms}
    configured = generator.configured(config) if config is not None else contextlib.nullcontext()
    seen = 0
    try:
        generator.eval()
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None
            norm.train()
        with configured:
            for batch in itertools.chain([first], batches):
                generator(batch)
                seen += 1
    finally:
        for module, training in modes.items():
            module.training = training
        for norm, momentum in momenta.items():
            norm.momentum = momentum
    return seen
