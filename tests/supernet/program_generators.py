"""Small generators written independently of ganas's modules, saved as the programs a user brings as a teacher:
TorchScript (scripted or traced), a torch.export archive (static or with dynamic shapes) and an ONNX model."""
from __future__ import annotations

import contextlib
import functools
import io
import logging
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width),
                                  nn.ReLU(inplace=True), nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3),
                                  nn.InstanceNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TinyGenerator(nn.Module):
    """A CycleGAN-like ResNet generator with named stages: ``stem``, ``down``, ``blocks.N``, ``up``, ``head``."""

    def __init__(self, in_nc: int = 3, out_nc: int = 3, width: int = 8, blocks: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_nc, width, 7), nn.InstanceNorm2d(width),
                                  nn.ReLU(inplace=True))
        self.down = nn.Sequential(nn.Conv2d(width, 2 * width, 3, 2, 1), nn.InstanceNorm2d(2 * width),
                                  nn.ReLU(inplace=True), nn.Conv2d(2 * width, 4 * width, 3, 2, 1),
                                  nn.InstanceNorm2d(4 * width), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[ResidualBlock(4 * width) for _ in range(blocks)])
        self.up = nn.Sequential(nn.ConvTranspose2d(4 * width, 2 * width, 3, 2, 1, output_padding=1),
                                nn.InstanceNorm2d(2 * width), nn.ReLU(inplace=True),
                                nn.ConvTranspose2d(2 * width, width, 3, 2, 1, output_padding=1),
                                nn.InstanceNorm2d(width), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(width, out_nc, 7), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.up(self.blocks(self.down(self.stem(x)))))


def tiny_generator(seed: int = 0, **kwargs) -> TinyGenerator:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyGenerator(**kwargs).eval()


@contextlib.contextmanager
def _quiet():
    level = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the ONNX exporter's "torchvision is not installed"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(level)


def save_program(module: nn.Module, kind: str, path: Path, size: int = 32, dynamic: bool = True) -> Path:
    """``module`` written as ``kind``: torchscript (scripted), traced (TorchScript by tracing), pt2, onnx;
    ``dynamic``: batch, height and width left free (pt2, onnx), else fixed at (1, C, size, size)."""
    channels = next(m for m in module.modules() if isinstance(m, nn.Conv2d)).in_channels
    example = torch.randn(2 if dynamic else 1, channels, size, size)
    shapes = ({0: torch.export.Dim("batch", min=1), 2: 4 * torch.export.Dim("h", min=2),
               3: 4 * torch.export.Dim("w", min=2)},) if dynamic else None
    with _quiet():
        if kind == "torchscript":
            torch.jit.save(torch.jit.script(module), str(path))
        elif kind == "traced":
            torch.jit.save(torch.jit.trace(module, example[:1]), str(path))
        elif kind == "pt2":
            torch.export.save(torch.export.export(module, (example,), dynamic_shapes=shapes), path)
        elif kind == "onnx":  # the TorchScript-based exporter, which wrote most ONNX generators in the wild
            axes = {0: "batch", 2: "height", 3: "width"}
            torch.onnx.export(module, (example,), str(path), dynamo=False, input_names=["image"],
                              output_names=["fake"], dynamic_axes={"image": axes, "fake": axes} if dynamic else None)
        else:
            raise ValueError(kind)
    return path


@functools.lru_cache(maxsize=None)
def program_bytes(kind: str, seed: int = 1, dynamic: bool = True, **hparams) -> bytes:
    """The bytes of ``tiny_generator(seed, **hparams)`` saved as ``kind``, made once per test process (an ONNX
    export takes seconds)."""
    with tempfile.TemporaryDirectory() as folder:
        return save_program(tiny_generator(seed, **hparams), kind, Path(folder) / f"G.{kind}",
                            dynamic=dynamic).read_bytes()


def write_program(path: Path, kind: str, **options) -> Path:
    path.write_bytes(program_bytes(kind, **options))
    return path


def rewrite_zip(path: Path, change, extra: dict[str, bytes] | None = None) -> None:
    """Rewrite the archive at ``path``: each member's bytes through ``change(name, data)``, plus ``extra``
    members named relative to the archive's top folder."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(buffer, "w") as target:
        top = source.namelist()[0].split("/", 1)[0]
        for info in source.infolist():
            target.writestr(info.filename, change(info.filename, source.read(info.filename)))
        for name, data in (extra or {}).items():
            target.writestr(f"{top}/{name}", data)
    path.write_bytes(buffer.getvalue())
