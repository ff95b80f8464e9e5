"""Learning-rate schedule of pix2pix / CycleGAN: constant, then linear decay to zero.

Computed from the step alone (no scheduler state), so a resumed run gets the same rates.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LinearDecaySchedule:
    base_lr: float
    total_steps: int
    decay_steps: int  # the last ``decay_steps`` steps decay linearly; before that the rate is constant

    def __post_init__(self):
        if not 0 <= self.decay_steps <= self.total_steps:
            raise ValueError(f"decay_steps must be within 0..total_steps ({self.decay_steps}, {self.total_steps})")

    def lr(self, step: int) -> float:
        constant = self.total_steps - self.decay_steps
        if step < constant:
            return self.base_lr
        # pix2pix: 1 - max(0, epoch - n_epochs) / (n_epochs_decay + 1), here per step
        return self.base_lr * (1.0 - (step - constant + 1) / (self.decay_steps + 1))

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        lr = self.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr
