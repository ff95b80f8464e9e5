"""Export a static generator as a deployable program: ``torch.export`` archive, TorchScript or ONNX.

Formats are registered by name (:func:`list_formats`); each knows how to write a file, how to
run one back (for verification) and how to read the ganas metadata stored in it (architecture,
config, input shape), so a deployed file says which subnet it is.

What was checked on torch 2.13 (CPU):

* ``torch.export.export`` + ``torch.export.save`` (``.pt2``) works for every generator, with a
  dynamic batch and a dynamic spatial size.
* ``torch.jit.script`` fails on the generators (their Python type hints, e.g. ``tuple[int, ...]``,
  are outside TorchScript's language); ``torch.jit.trace`` works, at one fixed input shape, but
  ``torch.jit.trace``/``save``/``load`` all raise a DeprecationWarning pointing to ``torch.export``:
  TorchScript stays for runtimes that still need it (e.g. older LibTorch apps); prefer ``.pt2``.
* ONNX: both exporters give the same numbers (max error about 2e-6); the legacy TorchScript-based
  one (``dynamo=False``) is faster to run (0.2 s vs 1-3 s on small nets) but warns that it is
  deprecated and will be removed, so the ``torch.export``-based one (``dynamo=True``, onnxscript)
  is used: it also shares the dynamic-shape spec with ``.pt2``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from foundation.errors import GanasError
from foundation.files import atomic_path
from foundation.registry import Registry

from .checkpoint import generator_from_record, read_checkpoint
from .errors import ConfigError, InputSizeError
from .extract import extract_subnet
from .generators import ChannelGenerator
from .space import format_config, parse_config_numbers

DYNAMIC_AXES = ("batch", "spatial")
METADATA_KEY = "ganas.json"  # extra-file name (pt2, TorchScript) and metadata_props key (ONNX)
INPUT_NAME, OUTPUT_NAME = "input", "output"


class ExportError(GanasError):
    """An export format that does not exist, cannot do what was asked, or a file that does not verify."""


@dataclass(frozen=True)
class InputSpec:
    """The shape a generator is exported at, and which of its dimensions stay free.

    A dynamic batch is traced with two images (``torch.export`` fixes any dimension whose
    example is 1); a dynamic spatial size accepts every multiple of the downsampling factor
    ``f`` from ``2f`` up (at ``1f`` the ResNet's reflection padding has too few pixels).
    """

    height: int
    width: int
    channels: int = 3
    dynamic: frozenset[str] = field(default_factory=frozenset)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (1, self.channels, self.height, self.width)

    def example(self, seed: int = 0) -> torch.Tensor:
        batch = 2 if "batch" in self.dynamic else 1
        return torch.randn(batch, self.channels, self.height, self.width,
                           generator=torch.Generator().manual_seed(seed))

    def dynamic_shapes(self, factor: int) -> tuple[dict[int, object], ...] | None:
        if not self.dynamic:
            return None
        dims: dict[int, object] = {}
        if "batch" in self.dynamic:
            dims[0] = torch.export.Dim("batch", min=1)
        if "spatial" in self.dynamic:
            dims[2] = factor * torch.export.Dim("height", min=2)
            dims[3] = factor * torch.export.Dim("width", min=2)
        return (dims,)

    def check_shapes(self, factor: int) -> list[tuple[int, int, int, int]]:
        """Shapes a verification runs: the exported one, plus one per dynamic axis."""
        shapes = [self.shape]
        if "batch" in self.dynamic:
            shapes.append((3, self.channels, self.height, self.width))
        if "spatial" in self.dynamic:
            shapes.append((1, self.channels, self.height + factor, self.width + 2 * factor))
        return shapes


@dataclass(frozen=True)
class ExportFormat:
    """One way of writing a generator to disk, and of reading it back."""

    name: str
    suffix: str
    description: str
    write: Callable[[ChannelGenerator, Path, InputSpec, str], None]  # generator, path, spec, metadata JSON
    run: Callable[[Path, torch.Tensor], torch.Tensor]
    metadata: Callable[[Path], str]
    dynamic: frozenset[str] = frozenset()
    note: str = ""  # shown to the user after an export


_FORMATS: Registry[ExportFormat] = Registry("export format", ExportError, key="name")
register_format, list_formats, get_format = _FORMATS.add, _FORMATS.names, _FORMATS.get  # register, list, look up


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence torch's known-harmless export chatter (not errors) so the CLI output stays readable."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")  # "torchvision is not installed"
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # torch.jit.trace: F.instance_norm checks the spatial size with a Python bool; the
            # shape is fixed at trace time, so the check holds for every input the file accepts.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)


# -- the formats ------------------------------------------------------------------------------------

def _write_pt2(generator: ChannelGenerator, path: Path, spec: InputSpec, metadata: str) -> None:
    program = torch.export.export(generator, (spec.example(),),
                                  dynamic_shapes=spec.dynamic_shapes(generator.downsample_factor))
    torch.export.save(program, path, extra_files={METADATA_KEY: metadata})


def _run_pt2(path: Path, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.export.load(path).module()(x)


def _metadata_pt2(path: Path) -> str:
    extra = {METADATA_KEY: ""}
    torch.export.load(path, extra_files=extra)
    return extra[METADATA_KEY]


def _write_torchscript(generator: ChannelGenerator, path: Path, spec: InputSpec, metadata: str) -> None:
    # check_trace would run the model twice more; export_generator's callers verify instead.
    traced = torch.jit.trace(generator, (spec.example(),), check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={METADATA_KEY: metadata})


def _run_torchscript(path: Path, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.jit.load(str(path), map_location="cpu")(x)


def _metadata_torchscript(path: Path) -> str:
    extra = {METADATA_KEY: ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return extra[METADATA_KEY]


def _write_onnx(generator: ChannelGenerator, path: Path, spec: InputSpec, metadata: str) -> None:
    # dynamo=True: the legacy exporter is deprecated in torch 2.13 (see the module docstring).
    program = torch.onnx.export(generator, (spec.example(),), dynamo=True, verbose=False,
                                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                dynamic_shapes=spec.dynamic_shapes(generator.downsample_factor))
    program.model.metadata_props[METADATA_KEY] = metadata
    # One self-contained file: generators are far below ONNX's 2 GB limit for embedded weights.
    program.save(path, external_data=False)


def _onnx_session(path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run_onnx(path: Path, x: torch.Tensor) -> torch.Tensor:
    session = _onnx_session(path)
    (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.detach().cpu().numpy()})
    return torch.from_numpy(out)


def _metadata_onnx(path: Path) -> str:
    return _onnx_session(path).get_modelmeta().custom_metadata_map.get(METADATA_KEY, "")


register_format(ExportFormat("pt2", ".pt2", "torch.export archive (torch.export.load(path).module())",
                             _write_pt2, _run_pt2, _metadata_pt2, frozenset(DYNAMIC_AXES)))
register_format(ExportFormat("torchscript", ".ts", "TorchScript, traced at one input shape (torch.jit.load)",
                             _write_torchscript, _run_torchscript, _metadata_torchscript,
                             note="torch.jit is deprecated in torch 2.13 (trace, save and load warn); "
                                  "prefer --format pt2 where the runtime allows"))
register_format(ExportFormat("onnx", ".onnx", "ONNX, one self-contained file (onnxruntime and other runtimes)",
                             _write_onnx, _run_onnx, _metadata_onnx, frozenset(DYNAMIC_AXES)))


# -- public API ---------------------------------------------------------------------------------------

def input_spec(generator: ChannelGenerator, input_size: int | Sequence[int], fmt: ExportFormat,
               dynamic: Iterable[str] = ()) -> InputSpec:
    """Check the size against the generator and the dynamic axes against the format."""
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise InputSizeError(f"input size {input_size!r} must be a positive integer or (height, width)")
    height, width = size
    generator.check_input_size(height, width)
    dynamic = frozenset(dynamic)
    unknown = sorted(dynamic - set(DYNAMIC_AXES))
    if unknown:
        raise ExportError(f"unknown dynamic axis {unknown[0]!r}; choose from {', '.join(DYNAMIC_AXES)}")
    unsupported = sorted(dynamic - fmt.dynamic)
    if unsupported:
        able = [n for n, f in _FORMATS.items() if set(unsupported) <= f.dynamic]
        raise ExportError(f"format {fmt.name} cannot export a dynamic {unsupported[0]} dimension "
                          f"({fmt.description}); use {' or '.join(able)}, or drop the dynamic axis")
    f = generator.downsample_factor
    if "spatial" in dynamic and min(height, width) < 2 * f:
        raise InputSizeError(f"a dynamic spatial size is exported from an example of at least {2 * f}x{2 * f} "
                             f"(twice the downsampling factor {f} of {generator.arch}); got {height}x{width}")
    return InputSpec(height, width, int(getattr(generator, "input_nc", 3)), dynamic)


def export_metadata(generator: ChannelGenerator, spec: InputSpec) -> str:
    """The JSON stored inside an exported file: which subnet it is and what input it takes."""
    return json.dumps({
        "arch": generator.arch, "config": format_config(generator.config), "hparams": generator.hparams(),
        "input_shape": list(spec.shape), "dynamic": sorted(spec.dynamic),
        "downsample_factor": generator.downsample_factor,
    }, sort_keys=True)


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def export_generator(generator: ChannelGenerator, path: str | os.PathLike, format: str = "onnx",
                     input_size: int | Sequence[int] = 256, dynamic: Iterable[str] = ()) -> Path:
    """Write ``generator`` (static, exported in eval mode) to ``path`` in ``format``; returns the path.

    The file is written under a temporary name and renamed, so a failed export leaves nothing.
    """
    fmt = get_format(format)
    if generator.elastic:
        raise ExportError(f"this {generator.arch} generator is an elastic supernet; extract a static subnet "
                          "first (supernet.extract_subnet(supernet, config)) and export that")
    spec = input_spec(generator, input_size, fmt, dynamic)
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"output {path} is a directory; give a file name, e.g. {path / ('subnet' + fmt.suffix)}")
    with atomic_path(path, keep_suffix=True) as partial, _eval_mode(generator), _quiet_export():
        fmt.write(generator, partial, spec, export_metadata(generator, spec))
    return path


def read_export_metadata(path: str | os.PathLike, format: str) -> dict:
    """The ganas metadata of an exported file (see :func:`export_metadata`)."""
    text = get_format(format).metadata(Path(path))
    if not text:
        raise ExportError(f"{path} holds no ganas metadata; was it written by ganas export?")
    return json.loads(text)


@dataclass(frozen=True)
class Verification:
    """How far an exported file's outputs are from the PyTorch module's, per input shape."""

    shapes: tuple[tuple[int, ...], ...]
    max_abs_diffs: tuple[float, ...]

    @property
    def max_abs_diff(self) -> float:
        return max(self.max_abs_diffs)


def verify_export(generator: ChannelGenerator, path: str | os.PathLike, format: str,
                  input_size: int | Sequence[int] = 256, dynamic: Iterable[str] = (), seed: int = 0) -> Verification:
    """Run the exported file and ``generator`` (eval mode) on seeded inputs of every exported shape."""
    fmt = get_format(format)
    spec = input_spec(generator, input_size, fmt, dynamic)
    shapes = spec.check_shapes(generator.downsample_factor)
    diffs = []
    rng = torch.Generator().manual_seed(seed)
    for shape in shapes:
        x = torch.randn(*shape, generator=rng)
        with _eval_mode(generator), torch.no_grad():
            expected = generator(x)
        with _quiet_export():
            got = fmt.run(Path(path), x)
        if tuple(got.shape) != tuple(expected.shape):
            raise ExportError(f"{path} gives an output of shape {tuple(got.shape)} for input {shape}; "
                              f"PyTorch gives {tuple(expected.shape)}")
        diffs.append(float((got - expected).abs().max()))
    return Verification(tuple(shapes), tuple(diffs))


def generator_for_export(checkpoint: str | os.PathLike, config: str | None = None) -> ChannelGenerator:
    """The static generator a ganas checkpoint stands for at ``config``.

    A supernet checkpoint needs ``config`` and yields the extracted subnet; a static generator
    checkpoint is returned as is, and a ``config`` given for it must be the one it was built at.
    """
    source = str(checkpoint)
    generator = generator_from_record(read_checkpoint(checkpoint), source)
    if generator.elastic:
        if config is None:
            raise ConfigError(f"{source} holds a {generator.arch} supernet; give the subnet to export with "
                              f"--config, e.g. {format_config(generator.config)} (its full width) or smaller numbers")
        return extract_subnet(generator, parse_config_numbers(config))
    if config is not None and parse_config_numbers(config) != tuple(generator.config):
        raise ConfigError(f"{source} holds a static {generator.arch} generator at config "
                          f"{format_config(generator.config)}, not {config}; omit --config or give that config")
    return generator
