"""SSIM (Wang et al. 2004) with an 11x11 Gaussian window (sigma 1.5), and the loss 1 - SSIM.

Convention of OMGD's student loss (bytedance/OMGD ``distillers/multiteacher_distiller.py`` calls
``models.modules.pytorch_ssim.SSIM()``, Po-Hsun-Su's pytorch-ssim): each channel is filtered on
its own (depthwise conv), with zero padding of 5 so the SSIM map keeps the image size, and the
map is averaged over batch, channels and pixels. pytorch-ssim fixes C1 = 0.01**2 and
C2 = 0.03**2, i.e. data range L = 1, although OMGD's images are in [-1, 1] (true range 2).
ganas keeps L = 1 by default so that OMGD's published weight (10 x (1 - SSIM)) means the same;
pass ``data_range=2.0`` for the textbook constants of [-1, 1] images.

``padding="valid"`` averages only where the window lies inside the image: the value of
scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)``, which crops the 5-pixel border.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .errors import FeatureMismatchError, LossConfigError

PADDINGS = ("zeros", "valid")


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float32, device=None) -> torch.Tensor:
    """The separable 1-D Gaussian, normalised to sum 1 (outer product = the 2-D window)."""
    if size <= 0 or size % 2 == 0 or sigma <= 0:
        raise LossConfigError(f"SSIM window must be a positive odd size with sigma > 0 (got {size}, {sigma})")
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _filter(x: torch.Tensor, window: torch.Tensor, padding: int) -> torch.Tensor:
    """Depthwise 2-D Gaussian filtering of every channel as two 1-D convs (exactly the 2-D window)."""
    c, k = x.shape[1], window.numel()
    row = window.view(1, 1, 1, k).expand(c, 1, 1, k)
    col = window.view(1, 1, k, 1).expand(c, 1, k, 1)
    x = F.conv2d(x, row, padding=(0, padding), groups=c)
    return F.conv2d(x, col, padding=(padding, 0), groups=c)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5,
             data_range: float = 1.0, padding: str = "zeros") -> torch.Tensor:
    """Per-pixel SSIM of two (N, C, H, W) batches: same size (``zeros``) or the interior (``valid``)."""
    if x.shape != y.shape or x.dim() != 4:
        raise FeatureMismatchError(f"SSIM needs two (N, C, H, W) tensors of one shape, got {tuple(x.shape)} "
                                   f"and {tuple(y.shape)}")
    if padding not in PADDINGS:
        raise LossConfigError(f"unknown SSIM padding {padding!r}; choose one of {', '.join(PADDINGS)}")
    if data_range <= 0:
        raise LossConfigError(f"SSIM data range must be positive (got {data_range})")
    if padding == "valid" and min(x.shape[-2:]) < window_size:
        raise FeatureMismatchError(f"valid SSIM needs images at least {window_size}x{window_size}, "
                                   f"got {x.shape[-2]}x{x.shape[-1]}")
    window = gaussian_window(window_size, sigma, x.dtype, x.device)
    pad = window_size // 2 if padding == "zeros" else 0
    mu_x, mu_y = _filter(x, window, pad), _filter(y, window, pad)
    var_x = _filter(x * x, window, pad) - mu_x ** 2
    var_y = _filter(y * y, window, pad) - mu_y ** 2
    cov = _filter(x * y, window, pad) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))


def ssim(x: torch.Tensor, y: torch.Tensor, **kwargs) -> torch.Tensor:
    """Mean SSIM over batch, channels and pixels (a scalar); keyword arguments as :func:`ssim_map`."""
    return ssim_map(x, y, **kwargs).mean()


class SSIMLoss(nn.Module):
    """1 - SSIM, OMGD's structural term between the student's and a teacher's output."""

    def __init__(self, window_size: int = 11, sigma: float = 1.5, data_range: float = 1.0,
                 padding: str = "zeros"):
        super().__init__()
        gaussian_window(window_size, sigma)  # validate now, not at the first step
        if padding not in PADDINGS or not (data_range > 0 and math.isfinite(data_range)):
            raise LossConfigError(f"SSIM needs padding in {PADDINGS} and a positive data range "
                                  f"(got {padding!r}, {data_range})")
        self.window_size, self.sigma, self.data_range, self.padding = window_size, sigma, data_range, padding

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 1 - ssim(x, y, window_size=self.window_size, sigma=self.sigma, data_range=self.data_range,
                        padding=self.padding)

    def extra_repr(self) -> str:
        return f"window={self.window_size}, sigma={self.sigma}, data_range={self.data_range}, padding={self.padding!r}"
