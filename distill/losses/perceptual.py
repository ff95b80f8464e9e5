"""Style (Gram-matrix) and perceptual (feature L1) losses on VGG16 activations, as OMGD.

Follows bytedance/OMGD ``distillers/multiteacher_distiller.py`` (``backward_G_student`` and
``gram``): the Gram matrix of an (N, C, H, W) activation is F F^T / (C * H * W) with F the
(N, C, H*W) reshape; the style loss is the sum over relu1_2, relu2_2, relu3_3 and relu4_3 of the
mean absolute difference of the Gram matrices; the perceptual loss is the mean absolute
difference of the relu2_2 activations.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .errors import FeatureMismatchError

PERCEPTUAL_LAYER = "relu2_2"


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) channel correlations normalised by C * H * W."""
    if x.dim() != 4:
        raise FeatureMismatchError(f"a Gram matrix needs an (N, C, H, W) activation, got {tuple(x.shape)}")
    n, c, h, w = x.shape
    f = x.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def _pairs(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]):
    if len(student) != len(teacher):
        raise FeatureMismatchError(f"{len(student)} student activations against {len(teacher)} teacher ones")
    for s, t in zip(student, teacher):
        if s.shape != t.shape:
            raise FeatureMismatchError(f"student activation {tuple(s.shape)} vs teacher {tuple(t.shape)}")
        yield s, t.detach()


def style_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of L1(Gram(student), Gram(teacher)); the teacher side is detached."""
    losses = [F.l1_loss(gram_matrix(s), gram_matrix(t)) for s, t in _pairs(student, teacher)]
    if not losses:
        raise FeatureMismatchError("the style loss needs at least one pair of activations")
    return torch.stack(losses).sum()


def feature_l1(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of one activation (the teacher side detached)."""
    ((s, t),) = _pairs([student], [teacher])
    return F.l1_loss(s, t)
