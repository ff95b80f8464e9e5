"""OMGD's student objective: what the student learns from its teachers' outputs (never from D or data).

Per teacher image T and student image S (bytedance/OMGD ``distillers/multiteacher_distiller.py``,
``backward_G_student``, ``--AGD_weights 1e1,1e4,1e1,1e-5``):

    10 x (1 - SSIM(S, T)) + 1e4 x style(VGG(S), VGG(T)) + 10 x L1(relu2_2(S), relu2_2(T)) + 1e-5 x TV(S)

summed over the teachers (so TV, which only sees S, counts once per teacher, as there), plus
lambda_CD x channel distillation against the wide teacher's features. OMGD's ``--lambda_CD``
defaults to 0 (off); its scripts use 10 (e.g. edges2shoes U-Net).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from .channel_distill import ChannelDistiller
from .errors import LossConfigError
from .perceptual import PERCEPTUAL_LAYER, feature_l1, style_loss
from .ssim import PADDINGS, SSIMLoss
from .tv import REDUCTIONS, total_variation
from evaluators.vgg import VGG16FeatureExtractor


SSIM_RANGES = ("signed", "unit")


@dataclass(frozen=True)
class OMGDStudentLoss:
    """Weights and options of the OMGD student loss (defaults: OMGD's published setting)."""

    lambda_ssim: float = 10.0
    lambda_style: float = 1e4
    lambda_perceptual: float = 10.0
    lambda_tv: float = 1e-5
    lambda_cd: float = 0.0
    perceptual: str = "vgg16"  # a key of PERCEPTUAL_NETWORKS; "none": SSIM + TV + CD only
    vgg_weights: str | None = None  # path of vgg16-397923af.pth (else $GANAS_VGG16_WEIGHTS, torch hub cache)
    vgg_imagenet_norm: bool = True  # OMGD feeds VGG [0, 1] images without ImageNet normalisation: False
    ssim_data_range: float = 1.0  # OMGD's pytorch-ssim constants (see distill.losses.ssim)
    ssim_padding: str = "zeros"
    # "signed": SSIM on the [-1, 1] outputs, as OMGD's code (its VGG terms carry the colours);
    # "unit": on (x + 1) / 2. Without VGG terms SSIM is the only image term, and on [-1, 1] its
    # luminance factor leaves colours wrong (13.6 dB vs 28.5 dB on [0, 1]: docs/benchmarks.md).
    ssim_range: str = "signed"
    tv_reduction: str = "sum"

    def __post_init__(self):
        for f in fields(self):
            if f.name.startswith("lambda_"):
                value = getattr(self, f.name)
                if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                    raise LossConfigError(f"{f.name} must be a finite number >= 0, got {value!r}")
        if self.perceptual not in PERCEPTUAL_NETWORKS:
            raise LossConfigError(f"unknown perceptual network {self.perceptual!r}; choose one of "
                                  f"{', '.join(PERCEPTUAL_NETWORKS)}")
        if self.ssim_padding not in PADDINGS:
            raise LossConfigError(f"unknown SSIM padding {self.ssim_padding!r}; choose one of {', '.join(PADDINGS)}")
        if self.tv_reduction not in REDUCTIONS:
            raise LossConfigError(f"unknown TV reduction {self.tv_reduction!r}; choose one of {', '.join(REDUCTIONS)}")
        if self.ssim_range not in SSIM_RANGES:
            raise LossConfigError(f"unknown SSIM range {self.ssim_range!r}; choose one of {', '.join(SSIM_RANGES)}")
        if not self.ssim_data_range > 0:
            raise LossConfigError(f"ssim_data_range must be positive, got {self.ssim_data_range}")


# perceptual network name -> builder of its feature extractor (None: no perceptual terms)
PERCEPTUAL_NETWORKS: dict[str, Callable[[OMGDStudentLoss], nn.Module] | None] = {
    "vgg16": lambda cfg: VGG16FeatureExtractor.from_pretrained(cfg.vgg_weights, cfg.vgg_imagenet_norm),
    "none": None,
}


@dataclass
class LossBreakdown:
    """The total to back-propagate, its weighted terms by name, and the terms left out and why."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    disabled: dict[str, str] = field(default_factory=dict)

    def scalars(self) -> dict[str, float]:
        """Plain floats for logging: every term and ``total``."""
        values = {name: float(v.detach()) for name, v in self.terms.items()}
        values["total"] = float(self.total.detach())
        return values


class OMGDStudentCriterion(nn.Module):
    """Computes :class:`LossBreakdown` for a student image against one or more teacher images.

    ``channel_distiller`` (needed when ``lambda_cd > 0``) holds trainable mappings: optimise
    :meth:`trainable_parameters` together with the student. ``extractor`` replaces the
    configured perceptual network (tests, or one VGG shared by several criteria).
    """

    def __init__(self, config: OMGDStudentLoss | None = None, channel_distiller: ChannelDistiller | None = None,
                 extractor: nn.Module | None = None):
        super().__init__()
        self.config = config = config if config is not None else OMGDStudentLoss()
        self.ssim = SSIMLoss(data_range=config.ssim_data_range, padding=config.ssim_padding)
        build = PERCEPTUAL_NETWORKS[config.perceptual]
        needs_features = build is not None and (config.lambda_style > 0 or config.lambda_perceptual > 0)
        self.extractor = (extractor if extractor is not None else build(config)) if needs_features else None
        if config.lambda_cd > 0 and channel_distiller is None:
            raise LossConfigError(f"lambda_cd = {config.lambda_cd} needs a ChannelDistiller over the distilled "
                                  "layers; pass one, or set lambda_cd to 0")
        self.channel_distiller = channel_distiller if config.lambda_cd > 0 else None
        # data-parallel training averages gradients over the processes, each with a share of the batch: a
        # batch-summed term (TV, reduction "sum") is scaled by the number of shares to stay the whole batch's sum
        self.batch_shares = 1

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def disabled_terms(self) -> dict[str, str]:
        cfg, off = self.config, {}
        for term in ("ssim", "style", "perceptual", "tv", "cd"):
            if getattr(cfg, f"lambda_{term}") == 0:
                off[term] = f"lambda_{term} = 0"
        if PERCEPTUAL_NETWORKS[cfg.perceptual] is None:
            off.update(style="perceptual=none", perceptual="perceptual=none")
        return off

    def forward(self, student: torch.Tensor, teachers: Sequence[torch.Tensor],
                student_features: Mapping[str, torch.Tensor] | None = None,
                teacher_features: Mapping[str, torch.Tensor] | None = None) -> LossBreakdown:
        """``teachers``: the teachers' output images (detached here); ``*_features``: the tapped
        layers of the student and of the wide teacher, for channel distillation."""
        if isinstance(teachers, torch.Tensor) or len(teachers) == 0:
            raise LossConfigError("teachers must be a non-empty sequence of teacher output images")
        cfg, off = self.config, self.disabled_terms()
        teachers = [t.detach() for t in teachers]
        terms: dict[str, torch.Tensor] = {}
        if "ssim" not in off:
            shift = (lambda x: (x + 1) / 2) if cfg.ssim_range == "unit" else (lambda x: x)
            terms["ssim"] = cfg.lambda_ssim * sum(self.ssim(shift(student), shift(t)) for t in teachers)
        if self.extractor is not None and not {"style", "perceptual"} <= set(off):
            s_feats = self.extractor(student)
            with torch.no_grad():
                t_feats = [self.extractor(t) for t in teachers]
            if "style" not in off:
                terms["style"] = cfg.lambda_style * sum(style_loss(s_feats, tf) for tf in t_feats)
            if "perceptual" not in off:
                terms["perceptual"] = cfg.lambda_perceptual * sum(
                    feature_l1(getattr(s_feats, PERCEPTUAL_LAYER), getattr(tf, PERCEPTUAL_LAYER)) for tf in t_feats)
        if "tv" not in off:
            shares = self.batch_shares if cfg.tv_reduction == "sum" else 1
            terms["tv"] = cfg.lambda_tv * len(teachers) * shares * total_variation(student, cfg.tv_reduction)
        if self.channel_distiller is not None:
            if student_features is None or teacher_features is None:
                raise LossConfigError("channel distillation (lambda_cd > 0) needs student_features and "
                                      "teacher_features (record them with FeatureTap)")
            terms["cd"] = cfg.lambda_cd * self.channel_distiller(student_features, teacher_features)
        total = torch.stack(list(terms.values())).sum() if terms else student.sum() * 0
        return LossBreakdown(total, terms, off)
