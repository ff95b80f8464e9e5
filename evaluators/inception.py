"""The FID Inception-v3 network in plain PyTorch (no torchvision, no torch-fidelity).

This is the TensorFlow graph ``inception-2015-12-05`` that every published FID is computed
with, as ported by pytorch-fid (``FIDInceptionA/C/E_1/E_2``) and torch-fidelity
(``FeatureExtractorInceptionV3``). It differs from torchvision's ImageNet Inception-v3: 1008
classes, BatchNorm eps 1e-3, the average pools of the A, C and first E blocks ignore the zero
padding (``count_include_pad=False``), and the last E block pools with *max*.

Module and parameter names follow the standard weight files so both load strictly with
``weights_only=True``: torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth`` (a plain
dict converted from the TF graph: 94 convs x (conv.weight + 4 bn tensors) + fc = 472 keys) and
pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (a state dict of torchvision's
``Inception3(num_classes=1008, aux_logits=False)`` with the FID blocks swapped in: the same
names, plus ``num_batches_tracked`` buffers when saved by torch >= 0.4.1, which carry no
information in eval mode and are dropped). A ``module.`` prefix (DataParallel) is stripped.

Preprocessing is registered by name: ``torch-fidelity`` (also torchmetrics': TF1.x bilinear
resize to 299, then ``(x - 128) / 128``) and ``pytorch-fid`` (``F.interpolate`` bilinear with
``align_corners=False``, then ``2 * x / 255 - 1``; GAN Compression's published FIDs use it).
Both take images with values in [0, 255].
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foundation.errors import GanasError

INPUT_SIZE = 299
NUM_FEATURES = 2048
NUM_CLASSES = 1008
TORCHVISION_IMAGENET_CLASSES = 1000


class InceptionWeightsError(GanasError):
    """A weights file that is unreadable or does not hold the FID Inception-v3 layout."""


class InceptionInputError(GanasError):
    """An input the Inception preprocessing cannot take, or an unknown preprocessing name."""


class FrozenBatchNorm2d(nn.Module):
    """Inference-only BatchNorm: the standard files hold weight, bias and running stats, no counter."""

    def __init__(self, channels: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(channels), requires_grad=False)
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU, named ``conv`` and ``bn`` as in the weight files."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = FrozenBatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_no_pad(x: Tensor) -> Tensor:
    """TF's 3x3 same-padded average pool: border windows average only the pixels they cover."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def pool(self, x: Tensor) -> Tensor:
        return _avg_pool_no_pad(x)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(self.pool(x))], 1)


class InceptionB(nn.Module):
    """35 -> 17 reduction (Mixed_6a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    """17x17 block (Mixed_6b..e) with factorised 1x7 / 7x1 convolutions."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def pool(self, x: Tensor) -> Tensor:
        return _avg_pool_no_pad(x)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            bd = layer(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(self.pool(x))], 1)


class InceptionD(nn.Module):
    """17 -> 8 reduction (Mixed_7a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block (Mixed_7b/c). ``max_pool``: the FID graph's last block pools with max, not average."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def pool(self, x: Tensor) -> Tensor:
        if self.max_pool:
            return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return _avg_pool_no_pad(x)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(self.pool(x))], 1)


class FIDInceptionV3(nn.Module):
    """The FID Inception-v3: a normalised (N, 3, 299, 299) batch -> (N, 2048) pool3 features."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(NUM_FEATURES, NUM_CLASSES)
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def logits(self, pool3: Tensor) -> Tensor:
        """The 1008 class logits of pool3 features (the Inception Score's input)."""
        return self.fc(pool3)


# ----------------------------------------------------------------------------- preprocessing

def resize_bilinear_tf1(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize as TF 1.x ``resize_bilinear(align_corners=False)``, the FID graph's own resize.

    Source coordinate = output index * (in / out), with no half-pixel offset and no antialiasing
    (``F.interpolate`` uses (i + 0.5) * scale - 0.5, which shifts the image and changes FID).
    Neighbours are floor and floor + 1 clamped to the border; both lerps follow TF's order in
    float32, which torch-fidelity reports bit-exact against TF on CPU.
    """
    if x.dim() != 4 or not torch.is_floating_point(x):
        raise InceptionInputError(f"resize needs a float (N, C, H, W) tensor, got {tuple(x.shape)} {x.dtype}")

    def axis(in_size: int, out_size: int) -> tuple[Tensor, Tensor, Tensor]:
        source = torch.arange(out_size, dtype=torch.float32, device=x.device)
        source = source * torch.tensor(in_size / out_size, dtype=torch.float32, device=x.device)
        low = source.long()
        high = (low + 1).clamp_max(in_size - 1)
        return low, high, (source - low.float()).to(x.dtype)

    y_lo, y_hi, dy = axis(x.shape[2], size[0])
    x_lo, x_hi, dx = axis(x.shape[3], size[1])
    top, bottom = x.index_select(2, y_lo), x.index_select(2, y_hi)
    dx = dx.view(1, 1, 1, -1)
    top_left, top_right = top.index_select(3, x_lo), top.index_select(3, x_hi)
    bottom_left, bottom_right = bottom.index_select(3, x_lo), bottom.index_select(3, x_hi)
    upper = top_left + (top_right - top_left) * dx
    lower = bottom_left + (bottom_right - bottom_left) * dx
    return upper + (lower - upper) * dy.view(1, 1, -1, 1)


def _preprocess_torch_fidelity(pixels: Tensor) -> Tensor:
    return (resize_bilinear_tf1(pixels, (INPUT_SIZE, INPUT_SIZE)) - 128) / 128


def _preprocess_pytorch_fid(pixels: Tensor) -> Tensor:
    x = F.interpolate(pixels / 255, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


PREPROCESSING: dict[str, Callable[[Tensor], Tensor]] = {
    "torch-fidelity": _preprocess_torch_fidelity,
    "pytorch-fid": _preprocess_pytorch_fid,
}
DEFAULT_PREPROCESSING = "torch-fidelity"


def get_preprocessing(name: str) -> Callable[[Tensor], Tensor]:
    """Pixels in [0, 255], (N, 3, H, W) float -> the network's normalised 299x299 input."""
    try:
        return PREPROCESSING[name]
    except KeyError:
        raise InceptionInputError(
            f"unknown Inception preprocessing {name!r}; choose one of {', '.join(sorted(PREPROCESSING))}") from None


# ----------------------------------------------------------------------------- weights

def _expected_shapes() -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in FIDInceptionV3().state_dict().items()}


def _listing(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def canonical_state_dict(raw: object, source: str = "state dict") -> dict[str, Tensor]:
    """Either standard file's contents -> exactly :class:`FIDInceptionV3`'s keys, as float32.

    Raises :class:`InceptionWeightsError` naming missing, unexpected and mis-shaped keys, and
    recognising torchvision's ImageNet Inception-v3 (1000 classes, AuxLogits): not the FID network.
    """
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping) or not all(isinstance(v, Tensor) for v in raw.values()):
        raise InceptionWeightsError(f"{source} is not a state dict of tensors")
    state = dict(raw)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    fc = state.get("fc.weight")
    imagenet_fc = fc is not None and fc.shape[0] == TORCHVISION_IMAGENET_CLASSES
    if imagenet_fc or any(k.startswith("AuxLogits.") for k in state):
        raise InceptionWeightsError(
            f"{source} holds torchvision's ImageNet Inception-v3 (1000 classes, AuxLogits), not the FID Inception "
            "(TF graph 2015-12-05, 1008 classes); FIDs from it are not comparable with published ones. Use "
            "weights-inception-2015-12-05-6726825d.pth or pt_inception-2015-12-05-6726825d.pth")
    expected = _expected_shapes()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {shape})" for k, shape in expected.items()
             if k in state and tuple(state[k].shape) != shape]
    if missing or unexpected or wrong:
        problems = [f"{label}: {_listing(keys)}" for label, keys in
                    (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise InceptionWeightsError(
            f"{source} does not hold the FID Inception-v3 layout ({len(expected)} tensors); " + "; ".join(problems))
    return {k: state[k].to(torch.float32) for k in expected}


def build_fid_inception(state_dict: Mapping[str, Tensor], source: str = "state dict") -> FIDInceptionV3:
    """An :class:`FIDInceptionV3` holding ``state_dict`` (either standard layout), in eval mode."""
    state = canonical_state_dict(state_dict, source)
    with torch.device("meta"):
        network = FIDInceptionV3()
    network.load_state_dict(state, strict=True, assign=True)
    network.requires_grad_(False)
    return network.eval()


def load_fid_inception(path: str | os.PathLike) -> FIDInceptionV3:
    """Read either standard weights file with ``weights_only=True`` (no code runs) and build the network."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for an unreadable or unsafe file
        raise InceptionWeightsError(f"Inception weights file {path} cannot be read ({type(exc).__name__}: {exc})"
                                    ) from None
    return build_fid_inception(raw, source=f"Inception weights file {path}")


def weights_digest(network: nn.Module, length: int = 8) -> str:
    """SHA-256 prefix of the weights' names, shapes and float32 values, independent of the file format.

    Two files holding the same weights (torch-fidelity's and pytorch-fid's) give the same digest;
    any other weights give another, so scores from different networks are never mixed.
    """
    digest = hashlib.sha256()
    for key, value in sorted(network.state_dict().items()):
        tensor = value.detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:length]
