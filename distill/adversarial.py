"""What every adversarial training recipe shares: its discriminator, its optimizers and their schedule."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch

from .discriminators import create_discriminator
from .schedule import LinearDecaySchedule


@dataclass(frozen=True, kw_only=True)
class AdversarialSettings:
    """PatchGAN discriminator and Adam settings (pix2pix / CycleGAN defaults)."""

    netd: str = "basic"
    ndf: int = 64
    n_layers_d: int = 3  # for netd "n_layers"
    d_norm: str = "batch"
    lr: float = 2e-4
    beta1: float = 0.5
    decay_fraction: float = 0.5  # the last half of the steps decays linearly, as 100 + 100 epochs

    def discriminator(self, input_nc: int, seed: int) -> torch.nn.Module:
        """A discriminator drawn from ``seed`` (the global RNG is left untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return create_discriminator(self.netd, input_nc, self.ndf, self.n_layers_d, self.d_norm)

    def adam(self, parameters: Iterable[torch.nn.Parameter]) -> torch.optim.Adam:
        return torch.optim.Adam(parameters, lr=self.lr, betas=(self.beta1, 0.999))

    def schedule(self, total_steps: int) -> LinearDecaySchedule:
        return LinearDecaySchedule(self.lr, total_steps, int(total_steps * self.decay_fraction))
