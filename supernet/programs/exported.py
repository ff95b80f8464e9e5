"""A ``torch.export`` archive (``.pt2``, ``torch.export.save``) as a teacher.

The archive is checked first (:mod:`.pt2_checks`: nothing in it may run Python), then loaded with
``torch.export.load``. The program's graph keeps, for every operator, the stack of modules it was called
from (``nn_module_stack``, fully qualified names such as ``model.10``), so a layer's output is the last
value computed inside that module that is used outside it, recorded while an ``fx.Interpreter`` runs the
graph. The input shape it was exported with says which dimensions it fixes (a static export takes its
example's batch and size only).
"""
from __future__ import annotations

import io
import warnings

import torch
from torch import Tensor, fx

from .base import ProgramError, ProgramGenerator
from .pt2_checks import check_pt2_archive


def looks_like_pt2(names: frozenset[str]) -> bool:
    """A zip archive laid out as torch.export.save writes it (``archive_format``, ``models/*.json``)."""
    entries = {n.split("/", 1)[1] if "/" in n else n for n in names}
    return "archive_format" in entries or "serialized_exported_program.json" in entries \
        or any(e.startswith("models/") and e.endswith(".json") for e in entries)


def load_exported_program(data: bytes, source: str) -> "ExportedGenerator":
    check_pt2_archive(data, source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(io.BytesIO(data))
    except Exception as exc:  # torch raises many types for a broken or newer archive
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ProgramError(f"{source} cannot be loaded as a torch.export program ({type(exc).__name__}: "
                           f"{first})") from None
    return ExportedGenerator(program, source)


def _input_shape(program) -> tuple | None:
    names = list(program.graph_signature.user_inputs)
    if len(names) != 1:
        raise ProgramError(f"a torch.export generator takes one image batch; this program takes {len(names)} "
                           f"inputs ({', '.join(map(str, names))})")
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == names[0])
    value = node.meta.get("val")
    if value is None:
        return None
    return tuple(d if isinstance(d, int) else None for d in value.shape)


def _module_paths(node: fx.Node) -> list[str]:
    stack = node.meta.get("nn_module_stack") or {}
    return [str(path).removeprefix("L['self'].").removeprefix("L__self__.") for path, _type in stack.values()]


class ExportedGenerator(ProgramGenerator):
    kind = "torch.export"
    label = "torch.export program"

    def __init__(self, program, source: str):
        super().__init__(source, _input_shape(program))
        self.exported = program
        self.program = program.module()  # train/eval was fixed at export: the module refuses train()
        self._names: list[str] | None = None
        self._outputs: dict[tuple[str, ...], dict[fx.Node, str]] = {}

    def run(self, x: Tensor) -> Tensor:
        return self.program(x)

    def __deepcopy__(self, memo) -> "ExportedGenerator":  # the program is not modified by runs: share it
        twin = ExportedGenerator(self.exported, self.source)
        twin.input_nc, twin.output_nc, twin.training = self.input_nc, self.output_nc, self.training
        return twin

    def layer_names(self) -> list[str]:
        if self._names is None:
            names: dict[str, None] = {}
            for node in self.program.graph.nodes:
                for path in _module_paths(node):
                    if path:
                        names.setdefault(path)
            self._names = list(names)
        return list(self._names)

    def _features(self, x: Tensor, names: tuple[str, ...]) -> tuple[Tensor, dict[str, Tensor]]:
        if names not in self._outputs:
            self._outputs[names] = {self._layer_output(name): name for name in names}
        recorder = _Recorder(self.program, self._outputs[names])
        out = recorder.run(x)
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out, {name: recorder.features[name] for name in names}

    def _layer_output(self, name: str) -> fx.Node:
        nodes = [n for n in self.program.graph.nodes if name in _module_paths(n)]
        members = set(nodes)
        found = None
        for node in nodes:
            if any(user not in members for user in node.users):
                found = node
        if found is None:
            raise ProgramError(f"layer {name!r} of {self.source} gives nothing to the rest of the network; name "
                               "another layer")
        return found


class _Recorder(fx.Interpreter):
    """Runs the graph and keeps a copy of the chosen nodes' values (a later in-place op may change them)."""

    def __init__(self, module: fx.GraphModule, chosen: dict[fx.Node, str]):
        super().__init__(module)
        self.chosen = chosen
        self.features: dict[str, Tensor] = {}

    def run_node(self, node: fx.Node):
        value = super().run_node(node)
        if node in self.chosen:
            self.features[self.chosen[node]] = value.clone()
        return value
