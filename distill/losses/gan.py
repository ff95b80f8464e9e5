"""Adversarial losses by name: lsgan, vanilla, hinge.

Semantics of pix2pix's ``GANLoss`` (target tensors shaped like the prediction, filled with the
real/fake label) extended with GAN Compression's ``for_discriminator`` switch, which only the
hinge loss needs: D minimises mean(relu(1 - real)) + mean(relu(1 + fake)), G minimises
-mean(fake). A list of predictions (multi-scale discriminators) gives the mean over scales.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from foundation.registry import Registry

from .errors import LossConfigError

Prediction = Union[torch.Tensor, Sequence["Prediction"]]


@dataclass(frozen=True)
class Labels:
    """The target values of the label-regression losses."""

    real: float = 1.0
    fake: float = 0.0

    def target(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        """A tensor shaped like ``prediction`` filled with the real or fake label (pix2pix)."""
        value = self.real if target_is_real else self.fake
        return torch.full_like(prediction, value)


# objective(prediction, target_is_real, for_discriminator, labels) -> scalar loss
Objective = Callable[[torch.Tensor, bool, bool, Labels], torch.Tensor]
_MODES: Registry[Objective] = Registry("GAN loss", LossConfigError)


def register_gan_mode(name: str) -> Callable[[Objective], Objective]:
    return _MODES.register(name)


def list_gan_modes() -> list[str]:
    return _MODES.names()


def get_gan_mode(name: str) -> Objective:
    return _MODES.get(name)


@register_gan_mode("lsgan")
def _lsgan(prediction, target_is_real, for_discriminator, labels):
    """Least squares (Mao et al.): MSE to the label."""
    return F.mse_loss(prediction, labels.target(prediction, target_is_real))


@register_gan_mode("vanilla")
def _vanilla(prediction, target_is_real, for_discriminator, labels):
    """The original GAN loss on logits: binary cross-entropy with the label."""
    return F.binary_cross_entropy_with_logits(prediction, labels.target(prediction, target_is_real))


@register_gan_mode("hinge")
def _hinge(prediction, target_is_real, for_discriminator, labels):
    """Hinge (SAGAN/GauGAN): margins for D, -mean for G."""
    if for_discriminator:
        margin = 1 - prediction if target_is_real else 1 + prediction
        return F.relu(margin).mean()
    if not target_is_real:
        raise LossConfigError("the generator's hinge loss must aim for real (target_is_real=True)")
    return -prediction.mean()


class GANLoss(nn.Module):
    """``loss(prediction, target_is_real, for_discriminator=True)`` for the chosen GAN mode."""

    def __init__(self, mode: str = "lsgan", real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        self.mode = mode
        self.objective = get_gan_mode(mode)
        self.labels = Labels(real_label, fake_label)

    def forward(self, prediction: Prediction, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        if isinstance(prediction, torch.Tensor):
            return self.objective(prediction, target_is_real, for_discriminator, self.labels)
        if len(prediction) == 0:
            raise LossConfigError("GANLoss got an empty list of discriminator predictions")
        # multi-scale: one prediction (or list of intermediate features, last = prediction) per scale
        losses = [self.forward(p[-1] if not isinstance(p, torch.Tensor) else p, target_is_real, for_discriminator)
                  for p in prediction]
        return torch.stack(losses).mean()

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, real={self.labels.real}, fake={self.labels.fake}"
