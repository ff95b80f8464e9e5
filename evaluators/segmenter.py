"""Segmenters for mIoU: small fully-convolutional nets (registry by name), their training and loading.

mIoU scores a label -> photo generator by segmenting its *generated* photos and comparing the
predictions with the label maps it was given (pix2pix Cityscapes uses DRN-D-105). ganas needs
no download for it: :func:`train_segmenter` fits a small registered net to the *real* photos
of a labelled training split (cross-entropy, Adam, seeded), and the checkpoint records its
class count, the dataset identity and its mIoU on the real validation photos, the ceiling a
generator can reach. Any other segmenter plugs in as a TorchScript file (images in [-1, 1],
(N, 3, H, W) -> logits (N, C, h, w); logits of another size are resized bilinearly).
"""
from __future__ import annotations

import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foundation.errors import GanasError
from foundation.files import atomic_path
from foundation.hashing import file_sha256
from foundation.registry import Registry
from imagedata import FolderDataset, LabelledDataset

from .torchscript import archive_members, is_torch_archive, is_torchscript, load_torchscript, probe_width

FORMAT = "ganas.segmenter/1"


class SegmenterError(GanasError):
    """An unknown segmenter, an unreadable segmenter file, or one that does not fit the dataset's classes."""


# ----------------------------------------------------------------------------- models

def _conv_block(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyUNet(nn.Module):
    """Two poolings down and back up with skip connections; any input size (skips set the upsampled size)."""

    def __init__(self, num_classes: int, width: int = 16, in_channels: int = 3) -> None:
        super().__init__()
        w = width
        self.enc1 = nn.Sequential(_conv_block(in_channels, w), _conv_block(w, w))
        self.enc2 = nn.Sequential(_conv_block(w, 2 * w), _conv_block(2 * w, 2 * w))
        self.bottom = nn.Sequential(_conv_block(2 * w, 4 * w), _conv_block(4 * w, 4 * w))
        self.dec2 = nn.Sequential(_conv_block(6 * w, 2 * w), _conv_block(2 * w, 2 * w))
        self.dec1 = nn.Sequential(_conv_block(3 * w, w), _conv_block(w, w))
        self.head = nn.Conv2d(w, num_classes, 1)

    @staticmethod
    def _up(x: Tensor, skip: Tensor) -> Tensor:
        return torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1)

    def forward(self, x: Tensor) -> Tensor:
        s1 = self.enc1(x)
        s2 = self.enc2(F.max_pool2d(s1, 2, ceil_mode=True))
        bottom = self.bottom(F.max_pool2d(s2, 2, ceil_mode=True))
        return self.head(self.dec1(self._up(self.dec2(self._up(bottom, s2)), s1)))


class DilatedFCN(nn.Module):
    """A few full-resolution conv blocks with growing dilation (1, 2, 4, 8): context without pooling."""

    def __init__(self, num_classes: int, width: int = 24, in_channels: int = 3) -> None:
        super().__init__()
        dilations = (1, 2, 4, 8, 1)
        layers = [_conv_block(in_channels if i == 0 else width, width, d) for i, d in enumerate(dilations)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


@dataclass(frozen=True)
class SegmenterEntry:
    name: str
    description: str
    build: Callable[..., nn.Module] = field(repr=False)


_SEGMENTERS: Registry[SegmenterEntry] = Registry("segmenter", SegmenterError, sort=False)


def register_segmenter(name: str, description: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a builder ``(num_classes, **hparams) -> nn.Module`` (images -> logits) under ``name``."""

    def add(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _SEGMENTERS.register(name, SegmenterEntry(name, description, build))
        return build
    return add


register_segmenter("tiny_unet", "two-level U-Net, BatchNorm, width 16 (default)")(TinyUNet)
register_segmenter("dilated_fcn", "five full-resolution conv blocks, dilations 1-2-4-8-1, width 24")(DilatedFCN)


def list_segmenters() -> list[str]:
    return _SEGMENTERS.names()


def create_segmenter_network(name: str, num_classes: int, **hparams: Any) -> nn.Module:
    entry = _SEGMENTERS.get(name)
    if not isinstance(num_classes, int) or num_classes < 2:
        raise SegmenterError(f"a segmenter needs at least 2 classes, got {num_classes!r}")
    try:
        return entry.build(num_classes, **hparams)
    except TypeError as exc:
        raise SegmenterError(f"segmenter {name!r} cannot be built with {hparams}: {exc}") from None


# ----------------------------------------------------------------------------- the loaded segmenter

class Segmenter(nn.Module):
    """A network (images in [-1, 1] -> class logits) with its class count and an ``identity`` recorded
    with every mIoU, so scores from different segmenters are never compared."""

    def __init__(self, network: nn.Module, num_classes: int, identity: str,
                 classes: tuple[str, ...] | None = None, info: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.network = network.eval()
        self.num_classes = int(num_classes)
        self.identity = identity
        self.classes = classes
        self.info = info or {}

    def forward(self, images: Tensor) -> Tensor:
        return self.network(images)

    def predict(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) images -> (N, H, W) int64 class indices (logits resized to H x W if needed)."""
        with torch.no_grad():
            logits = self(images)
        if not isinstance(logits, Tensor) or logits.dim() != 4 or logits.shape[:2] != (images.shape[0],
                                                                                      self.num_classes):
            shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise SegmenterError(f"segmenter {self.identity} returned {shape}; expected logits "
                                 f"({images.shape[0]}, {self.num_classes}, H, W)")
        if logits.shape[-2:] != images.shape[-2:]:
            logits = F.interpolate(logits.float(), size=images.shape[-2:], mode="bilinear", align_corners=False)
        return logits.argmax(1)


def is_torchscript_file(path: Path) -> bool:
    """TorchScript archives are zip files with a ``constants.pkl`` and ``code/`` inside; checkpoints are not."""
    try:
        with zipfile.ZipFile(path) as archive:
            return is_torchscript(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _existing(path: str | os.PathLike) -> Path:
    path = Path(os.path.expanduser(os.fspath(path)))
    if not path.is_file():
        raise SegmenterError(f"segmenter file {path} does not exist; train one with `ganas train segmenter "
                             "--data DIR --out PATH` or pass a TorchScript segmenter")
    return path


def check_segmenter_file(path: str | os.PathLike) -> Path:
    """Refuse up front a file :func:`load_segmenter` would refuse: missing, unreadable, not a torch archive (read
    from its zip directory), or a checkpoint that is not a ganas segmenter (loaded: these nets are small). A
    TorchScript file is only recognised here; its network runs when a worker loads it."""
    path = _existing(path)
    members = archive_members(path, SegmenterError, "segmenter")
    if is_torchscript(members):
        return path
    if not is_torch_archive(members):
        raise SegmenterError(f"{path} is neither a ganas segmenter checkpoint ({FORMAT}) nor a TorchScript file")
    load_segmenter(path)
    return path


def load_segmenter(path: str | os.PathLike) -> Segmenter:
    """A ganas segmenter checkpoint (:func:`save_segmenter`) or a TorchScript file, in eval mode on the CPU."""
    path = _existing(path)
    digest = file_sha256(path)[:8]
    if is_torchscript_file(path):
        module = load_torchscript(path, SegmenterError)
        classes = probe_width(module, path, SegmenterError, attribute="num_classes", meaning="class count",
                              what="segmenter", output="logits (N, C, H, W)", dims=4, minimum=2)
        return Segmenter(module, classes, f"torchscript:{digest}:{path.name}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or unsafe file
        raise SegmenterError(f"segmenter file {path} is neither TorchScript nor a readable checkpoint "
                             f"({type(exc).__name__}: {exc})") from None
    return segmenter_from_record(record, str(path), f"segmenter:{digest}:{path.name}")


def segmenter_from_record(record: Any, source: str, identity: str) -> Segmenter:
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise SegmenterError(f"{source} is not a ganas segmenter checkpoint ({FORMAT}) nor a TorchScript file")
    try:
        network = create_segmenter_network(record["arch"], int(record["num_classes"]), **record["hparams"])
        network.load_state_dict(record["state_dict"], strict=True)
    except (KeyError, RuntimeError, TypeError) as exc:
        raise SegmenterError(f"{source}: malformed segmenter checkpoint ({type(exc).__name__}: {exc})") from None
    classes = tuple(record["classes"]) if record.get("classes") else None
    info = {k: record.get(k) for k in ("arch", "hparams", "dataset", "val_miou", "steps", "image_size")}
    return Segmenter(network, int(record["num_classes"]), identity, classes, info)


def save_segmenter(network: nn.Module, path: str | os.PathLike, arch: str, hparams: dict[str, Any],
                   num_classes: int, classes: tuple[str, ...] | None = None, dataset: dict[str, Any] | None = None,
                   val_miou: float | None = None, steps: int | None = None,
                   image_size: tuple[int, int] | None = None) -> Path:
    """Write a checkpoint loadable with ``torch.load(weights_only=True)``, atomically (temp + rename)."""
    record = {
        "format": FORMAT, "arch": arch, "hparams": dict(hparams), "num_classes": int(num_classes),
        "classes": list(classes) if classes else None, "dataset": dict(dataset or {}),
        "val_miou": None if val_miou is None else float(val_miou), "steps": steps,
        "image_size": list(image_size) if image_size else None,
        "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(record, tmp)
    return Path(path)


# ----------------------------------------------------------------------------- training

@dataclass(frozen=True)
class SegmenterTraining:
    """A trained network with what produced it: the loss of every step, the steps and the seconds taken."""

    network: nn.Module
    arch: str
    hparams: dict[str, Any]
    num_classes: int
    losses: tuple[float, ...]
    steps: int
    seconds: float


def _batches(dataset: Any, batch_size: int, steps: int, generator: torch.Generator):
    """Seeded shuffled index batches, a new order (and augmentation epoch) whenever the data is used up."""
    count, epoch, step = len(dataset), 0, 0
    while step < steps:
        dataset.set_epoch(epoch)
        order = torch.randperm(count, generator=generator).tolist()
        for start in range(0, count, batch_size):
            if step == steps:
                return
            yield order[start:start + batch_size]
            step += 1
        epoch += 1


def train_segmenter(dataset: FolderDataset, arch: str = "tiny_unet", steps: int = 300, batch_size: int = 8,
                    lr: float = 2e-3, seed: int = 0, device: str = "cpu", progress: bool = True,
                    **hparams: Any) -> SegmenterTraining:
    """Fit segmenter ``arch`` to the real photos (``B``) and label maps of a labelled split.

    Cross-entropy ignoring the dataset's ignore index, Adam; the initial weights, the batch order
    and the augmentations follow ``seed``, so the same call gives the same network.
    """
    from tqdm import tqdm

    if not isinstance(dataset, LabelledDataset):
        raise SegmenterError(f"a segmenter trains on a labelled dataset (photos + label maps); "
                             f"{getattr(dataset, 'root', dataset)} has no label maps")
    spec = dataset.spec
    if not (isinstance(steps, int) and steps >= 1 and isinstance(batch_size, int) and batch_size >= 1 and lr > 0):
        raise SegmenterError(f"training needs steps >= 1, batch size >= 1 and lr > 0, got {steps}, {batch_size}, {lr}")
    torch.manual_seed(seed)
    network = create_segmenter_network(arch, spec.num_classes, **hparams).to(device).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    ignore = spec.ignore_index if spec.ignore_index is not None else -100
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    start = time.perf_counter()
    bar = tqdm(total=steps, desc=f"training {arch} segmenter", unit="step", disable=not progress, leave=False)
    for indices in _batches(dataset, batch_size, steps, generator):
        items = [dataset[i] for i in indices]
        sizes = sorted({tuple(item["B"].shape[-2:]) for item in items})
        if len(sizes) > 1:
            raise SegmenterError(f"training images of different sizes {sizes} cannot share a batch; resize them to "
                                 "one size (ganas train segmenter --size N)")
        images = torch.stack([item["B"] for item in items]).to(device)
        labels = torch.stack([item["label"] for item in items]).to(device)
        loss = F.cross_entropy(network(images), labels, ignore_index=ignore)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        bar.update()
    bar.close()
    return SegmenterTraining(network.eval(), arch, dict(hparams), spec.num_classes, tuple(losses), len(losses),
                             time.perf_counter() - start)
