"""Total variation of an image batch, OMGD's smoothness prior on the student's output.

bytedance/OMGD ``distillers/multiteacher_distiller.py`` (``backward_G_student``) uses the SUM
over the batch of absolute differences between horizontal and vertical neighbours (anisotropic
L1 TV, not a mean and not squared), weighted by 1e-5; ``reduction="mean"`` divides by the
number of pixel-differences instead, which makes the value independent of the image size.
"""
from __future__ import annotations

import torch

from .errors import FeatureMismatchError, LossConfigError

REDUCTIONS = ("sum", "mean")


def total_variation(x: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """sum |x[..., i, j+1] - x[..., i, j]| + sum |x[..., i+1, j] - x[..., i, j]| over the batch."""
    if x.dim() != 4:
        raise FeatureMismatchError(f"total variation needs an (N, C, H, W) batch, got {tuple(x.shape)}")
    if reduction not in REDUCTIONS:
        raise LossConfigError(f"unknown TV reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")
    dx = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs()
    dy = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs()
    if reduction == "sum":
        return dx.sum() + dy.sum()
    return (dx.sum() + dy.sum()) / max(dx.numel() + dy.numel(), 1)
