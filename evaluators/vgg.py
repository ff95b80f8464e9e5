"""VGG16 feature extractor in plain PyTorch (torchvision cannot be a dependency), frozen: a measuring
instrument shared by OMGD's perceptual and style losses (:mod:`distill.losses`) and the
``teacher-perceptual`` metric.

Its ``features`` module has torchvision's indices (conv at 0, 2, 5, 7, 10, 12, 14, 17, 19, 21,
24, 26, 28; ReLU after each; max-pool at 4, 9, 16, 23, 30), so torchvision's state-dict file
``vgg16-397923af.pth`` loads as is. Only layers up to relu4_3 (index 22) are built: the keys of
later layers and of the classifier are accepted and ignored. Returns relu1_2, relu2_2, relu3_3
and relu4_3 (indices 3, 8, 15, 22), the layers of OMGD's ``utils/vgg.py``.

Inputs are images in [-1, 1]; they are mapped to [0, 1] (as OMGD's ``utils/vgg_feature.py``)
and then, by default, normalised with the ImageNet mean and std the weights were trained with.
OMGD skips that last step; ``imagenet_norm=False`` reproduces it.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import torch
from torch import nn

from foundation.errors import GanasError, WeightsFileError
from foundation.weights import WeightsSpec, find_weights, read_weights


VGG16_FILENAME = "vgg16-397923af.pth"
VGG16_ENV_VAR = "GANAS_VGG16_WEIGHTS"
VGG16_WEIGHTS = WeightsSpec(
    what="VGG16 (torchvision)", file_names=(VGG16_FILENAME,), env_var=VGG16_ENV_VAR, flag="--vgg-weights",
    published_at=("https://download.pytorch.org/models/vgg16-397923af.pth",),
    hint="The OMGD loss with --perceptual none (SSIM + TV + channel distillation) needs no VGG16.")


class VGGInputError(GanasError):
    """Images VGG16 cannot take (not an (N, 3, H, W) RGB batch)."""


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's vgg16 ("D") up to pool4's input: channel counts, "M" = max-pool
_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
TAPS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}


class VGGFeatures(NamedTuple):
    """The four activations used by the style and perceptual losses."""

    relu1_2: torch.Tensor
    relu2_2: torch.Tensor
    relu3_3: torch.Tensor
    relu4_3: torch.Tensor


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for item in _LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = item
    return nn.Sequential(*layers)


class VGG16FeatureExtractor(nn.Module):
    """Frozen VGG16 up to relu4_3: images in [-1, 1] -> :class:`VGGFeatures`.

    Parameters never need gradients and the module stays in eval mode, but gradients do flow
    back to the input image, which is what a perceptual loss on a student needs.
    """

    def __init__(self, imagenet_norm: bool = True):
        super().__init__()
        self.imagenet_norm = imagenet_norm
        self.features = _features()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG16FeatureExtractor":
        """Always eval: the extractor is a fixed measuring instrument."""
        return super().train(False)

    def load_torchvision_state_dict(self, state_dict: dict, source: str = "state dict") -> None:
        """Load torchvision's vgg16 state dict; later layers and classifier keys are ignored."""
        if not isinstance(state_dict, dict):
            raise WeightsFileError(f"{source} is not a state dict (got {type(state_dict).__name__})")
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        wrong = [f"{k} {tuple(state_dict[k].shape)} (expected {tuple(v.shape)})" for k, v in own.items()
                 if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
        if missing or wrong:
            parts = [f"missing {', '.join(missing[:6])}"] if missing else []
            parts += [f"wrong shape {', '.join(wrong[:6])}"] if wrong else []
            raise WeightsFileError(f"{source} does not hold torchvision's VGG16 weights: {'; '.join(parts)}")
        self.load_state_dict({k: state_dict[k] for k in own})

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, imagenet_norm: bool = True
                        ) -> "VGG16FeatureExtractor":
        """Read ``vgg16-397923af.pth``: ``path``, else ``$GANAS_VGG16_WEIGHTS``, else the torch hub cache."""
        found = find_weights(VGG16_WEIGHTS, path)
        extractor = cls(imagenet_norm)
        extractor.load_torchvision_state_dict(read_weights(found), str(found))
        return extractor

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> [0, 1] -> (x - mean) / std (the last step only with ``imagenet_norm``)."""
        x = (x + 1) / 2
        return (x - self.mean) / self.std if self.imagenet_norm else x

    def forward(self, x: torch.Tensor) -> VGGFeatures:
        if x.dim() != 4 or x.shape[1] != 3:
            raise VGGInputError(f"VGG16 needs (N, 3, H, W) RGB images, got {tuple(x.shape)}")
        h = self.normalize(x)
        taps, wanted = {}, {index: name for name, index in TAPS.items()}
        for index, layer in enumerate(self.features):  # built up to relu4_3, the last tap
            h = layer(h)
            if index in wanted:
                taps[wanted[index]] = h
        return VGGFeatures(**taps)
