"""A teacher given as a program: images in, images out, and (for some kinds) named layers.

ganas cannot read a program's family, width or depth, only run it. :class:`ProgramGenerator` wraps one
as an ``nn.Module`` that the distillation, the evaluators and the search workers use like any teacher:
it runs the program (one piece at a time when the program was exported for a fixed batch), says which
input sizes it accepts (:meth:`check_input_size`), and, for kinds whose files keep module names, names
the layers whose outputs it can give (:meth:`layer_names`, :meth:`forward_with_features`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Sequence

import torch
from torch import Tensor, nn

from ..errors import CheckpointError, InputSizeError

Shape = tuple  # (N, C, H, W) as a program declares it; None where it leaves a dimension free


class ProgramError(CheckpointError):
    """A program teacher that cannot be read, refuses its input, or cannot give what was asked of it."""


class ProgramGenerator(nn.Module, ABC):
    """A program run as a generator. ``input_nc`` and ``output_nc`` are known once it has run (or declared)."""

    kind: ClassVar[str] = ""  # the teacher kind it is registered under (supernet.teachers)
    label: ClassVar[str] = ""  # what the messages call it
    no_features: ClassVar[str] = ""  # why a kind gives no intermediate features ("" when it gives them)
    elastic = False

    def __init__(self, source: str, input_shape: Sequence[int | None] | None = None):
        super().__init__()
        self.source = source
        self.input_shape: Shape | None = tuple(input_shape) if input_shape is not None else None
        self.input_nc: int | None = self.input_shape[1] if self.input_shape and len(self.input_shape) == 4 else None
        self.output_nc: int | None = None

    # -- what a kind implements --------------------------------------------------------------
    @abstractmethod
    def run(self, x: Tensor) -> Tensor:
        """The program on ``x`` (a batch it accepts)."""

    def layer_names(self) -> list[str]:
        """Names ``forward_with_features`` accepts, in the order the program runs them (none by default)."""
        return []

    def _features(self, x: Tensor, names: tuple[str, ...]) -> tuple[Tensor, dict[str, Tensor]]:
        raise ProgramError(self._no_layers_message())

    # -- shared behaviour --------------------------------------------------------------------
    @property
    def arch(self) -> str:
        return self.kind

    def hparams(self) -> dict:
        return {"input_nc": self.input_nc, "output_nc": self.output_nc}

    def describe(self) -> str:
        channels = f"{self.input_nc} -> {self.output_nc} channels" if self.output_nc else "channels not probed yet"
        shape = "any batch and size" if not set(self.fixed_dims()) & {0, 2, 3} else \
            "input " + "x".join("N" if d is None else str(d) for d in self.input_shape)
        layers = len(self.layer_names())
        return f"{self.label}, {channels}, {shape}, " + (f"{layers} named layers" if layers else "no named layers")

    def distill_layer_names(self) -> list[str]:
        """A program names no layers to distil by itself: without ``--teacher-layers`` only its outputs are used."""
        return []

    def fixed_dims(self) -> dict[int, int]:
        """The input dimensions the program fixes: {dimension: size}."""
        return {i: d for i, d in enumerate(self.input_shape or ()) if isinstance(d, int)}

    def check_input_size(self, height: int, width: int) -> None:
        fixed = self.fixed_dims()
        wanted = (fixed.get(2, height), fixed.get(3, width))
        if wanted != (height, width):
            raise InputSizeError(
                f"{self.source} takes only {wanted[0]}x{wanted[1]} images (its {self.label} fixes its input at "
                f"{'x'.join('N' if d is None else str(d) for d in self.input_shape)}), not {height}x{width}: use "
                f"--size {wanted[0]} if that is what it was made for, or export it again with a dynamic height and "
                "width (docs/teachers.md)")

    def check_layers(self, names: Sequence[str]) -> None:
        """Refuse names this program cannot give a feature for, naming what it has."""
        if not names:
            return
        available = self.layer_names()
        if not available:
            raise ProgramError(self._no_layers_message())
        unknown = [n for n in names if n not in available]
        if unknown:
            preview = ", ".join(available[:16]) + (", ..." if len(available) > 16 else "")
            raise ProgramError(f"{self.source} has no layer named {unknown[0]!r} (--teacher-layers); its layers are "
                               f"named {preview}")

    def _no_layers_message(self) -> str:
        return (f"{self.source} is {_article(self.label)} {self.label}, which gives no intermediate features"
                f"{': ' + self.no_features if self.no_features else ''}; drop --teacher-layers to distil its outputs "
                "only, or give the teacher as TorchScript or a torch.export archive (docs/teachers.md)")

    def forward(self, x: Tensor) -> Tensor:
        return self._checked(x, self._batched(x, lambda part: (self.run(part), {}))[0])

    def forward_with_features(self, x: Tensor, names: Sequence[str]) -> tuple[Tensor, dict[str, Tensor]]:
        """The output and the output of each named layer, from one run of the program."""
        names = tuple(names)
        if not names:
            return self(x), {}
        self.check_layers(names)
        out, features = self._batched(x, lambda part: self._features(part, names))
        return self._checked(x, out), features

    def _batched(self, x: Tensor, run) -> tuple[Tensor, dict[str, Tensor]]:
        """``run`` on ``x``, split into the batch the program was exported for when it fixes one."""
        batch = self.fixed_dims().get(0)
        if batch is None or x.shape[0] == batch:
            return self._guarded(run, x)
        if x.shape[0] % batch:
            raise ProgramError(f"{self.source} takes batches of {batch} only, not {x.shape[0]}")
        parts = [self._guarded(run, part) for part in x.split(batch)]
        features = {name: torch.cat([p[1][name] for p in parts]) for name in parts[0][1]}
        return torch.cat([p[0] for p in parts]), features

    def _guarded(self, run, x: Tensor):
        """``run(x)``, a failure of the program reported as one message that names the file and the input."""
        if x.dim() == 4:
            self.check_input_size(int(x.shape[2]), int(x.shape[3]))
        try:
            return run(x)
        except ProgramError:
            raise
        except Exception as exc:  # whatever the program raises on an input it does not take
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise ProgramError(f"{self.source} fails on an input of shape {tuple(x.shape)} ({type(exc).__name__}: "
                               f"{first}); if it takes only the size it was made for, give that --size") from None

    def _checked(self, x: Tensor, out) -> Tensor:
        if not isinstance(out, Tensor) or out.dim() != 4 or out.shape[0] != x.shape[0]:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ProgramError(f"{self.source} returned {got} for an input of shape {tuple(x.shape)}; a generator "
                               "returns one image per input (N, C, H, W)")
        self.input_nc, self.output_nc = int(x.shape[1]), int(out.shape[1])
        return out

    def train(self, mode: bool = True) -> "ProgramGenerator":
        """Only the flag: a program's train/eval behaviour was fixed when it was written (kinds that keep one
        switch it in :meth:`_set_mode`)."""
        self.training = mode
        self._set_mode(mode)
        return self

    def _set_mode(self, mode: bool) -> None:
        pass


def _article(label: str) -> str:
    return "an" if label[:1].lower() in "aeiou" else "a"
