"""Layers whose width can be changed per forward pass by slicing their first channels.

Each elastic layer subclasses the plain PyTorch layer, so a supernet has exactly the
module tree and state-dict keys of the static generator it generalises. The output
width is set through ``active_out`` (``None`` means the full width) before a forward
pass; the input width is read from the incoming tensor, as in once-for-all.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _SliceCache:
    """The last contiguous (weight, bias) slices, reused while no gradient is being recorded.

    Slicing the first channels of a dense weight gives a non-contiguous view that the conv copies
    on every call: a fixed cost that is 6-12% of a small subnet's forward pass. Evaluation reuses
    the copy; the key holds the tensors' storage and version, so an optimizer step, a
    ``load_state_dict`` or a move to another device invalidates it. Training never uses it.
    """

    def __init__(self):
        self.key = None
        self.value = None

    def get(self, module: nn.Module, shape_key: tuple, make):
        if torch.is_grad_enabled():
            return make()
        params = [p for p in (module.weight, module.bias) if p is not None]
        key = shape_key + tuple((p.data_ptr(), p._version) for p in params)
        if key != self.key:
            self.value = tuple(t.contiguous() if t is not None else None for t in make())
            self.key = key
        return self.value


def _input_index(full: int, active: int, concat_halves: bool, device) -> torch.Tensor | slice:
    """Input channels to keep: the first ``active``, or the first half of each concatenated half."""
    if not concat_halves:
        return slice(0, active)
    half_full, half_active = full // 2, active // 2
    first = torch.arange(half_active, device=device)
    return torch.cat([first, first + half_full])


class ElasticConv2d(nn.Conv2d):
    """Conv2d keeping the first ``active_out`` filters and the first input channels.

    ``concat_halves`` marks a conv whose input is ``cat([a, b])`` of two equally wide
    tensors (U-Net skips): it keeps the first channels of each half.
    """

    def __init__(self, *args, concat_halves: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.active_out: int | None = None
        self.concat_halves = concat_halves
        self._slices = _SliceCache()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_c = self.active_out or self.out_channels
        in_c = x.shape[1]
        if self.groups == 1:
            groups = 1

            def make():
                index = _input_index(self.in_channels, in_c, self.concat_halves, x.device)
                return self.weight[:out_c, index], (self.bias[:out_c] if self.bias is not None else None)

            weight, bias = self._slices.get(self, (out_c, in_c), make)
        elif self.groups == self.in_channels == self.out_channels:  # depthwise: a contiguous slice already
            out_c, groups = in_c, in_c
            weight = self.weight[:in_c]
            bias = self.bias[:out_c] if self.bias is not None else None
        else:
            raise ValueError("elastic grouped convolutions must be dense or depthwise")
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(x, weight, bias, self.stride, 0, self.dilation, groups)
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)


class ElasticConvTranspose2d(nn.ConvTranspose2d):
    """ConvTranspose2d keeping the first ``active_out`` outputs and the first inputs."""

    def __init__(self, *args, concat_halves: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.active_out: int | None = None
        self.concat_halves = concat_halves
        self._slices = _SliceCache()

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        out_c = self.active_out or self.out_channels
        in_c = x.shape[1]

        def make():
            index = _input_index(self.in_channels, in_c, self.concat_halves, x.device)
            return self.weight[index, :out_c], (self.bias[:out_c] if self.bias is not None else None)  # (in, out, ..)

        weight, bias = self._slices.get(self, (out_c, in_c), make)
        return F.conv_transpose2d(
            x, weight, bias, self.stride, self.padding, self.output_padding, 1, self.dilation
        )


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d over the first channels; running statistics are updated in place."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        training = self.training or not self.track_running_stats
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        if self.momentum is not None:
            momentum = self.momentum
        else:  # a cumulative average, as BatchNorm2d's (BatchNorm recalibration sets it)
            momentum = 1.0 / float(self.num_batches_tracked) if self.training and self.track_running_stats else 0.0
        return F.batch_norm(
            x,
            self.running_mean[:c] if self.running_mean is not None else None,
            self.running_var[:c] if self.running_var is not None else None,
            self.weight[:c] if self.affine else None,
            self.bias[:c] if self.affine else None,
            training,
            momentum,
            self.eps,
        )


class ElasticInstanceNorm2d(nn.InstanceNorm2d):
    """InstanceNorm2d over the first channels (statistics are per sample, so only affine slices)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features or not (self.affine or self.track_running_stats):
            return super().forward(x) if c == self.num_features else F.instance_norm(x, eps=self.eps)
        return F.instance_norm(
            x,
            self.running_mean[:c] if self.running_mean is not None else None,
            self.running_var[:c] if self.running_var is not None else None,
            self.weight[:c] if self.affine else None,
            self.bias[:c] if self.affine else None,
            self.training or not self.track_running_stats,
            self.momentum if self.momentum is not None else 0.0,
            self.eps,
        )
