"""A TorchScript file (``torch.jit.save`` of a scripted or traced module) as a teacher.

TorchScript is code, but not Python: the file's ``code/`` is TorchScript, compiled and run by PyTorch's
own interpreter, which can call PyTorch's registered operators only; its ``data.pkl`` and
``constants.pkl`` are read by TorchScript's own unpickler, which builds tensors and TorchScript types,
never Python objects. It keeps the module tree's names (``model.10``, ``blocks.0.conv1``), but a loaded
module accepts no forward hooks. Its features are read off the graph instead: inlined, every operator
records the module path it came from; the output of module ``P`` is the last value computed inside
``P`` that is used outside it, and a function built from the graph returns that value (cloned, as an
in-place operator after it would change it) next to the output.
"""
from __future__ import annotations

import copy
import io
import re
import warnings
import torch
from torch import Tensor

from .base import ProgramError, ProgramGenerator

_STEP = re.compile(r"([^.()]+)\(([^()]*)\)")  # "blocks(Sequential).0(Block)" -> (blocks, Sequential), (0, Block)
_NOT_A_MODULE = ("SELF", "UNKNOWN_INSTANCE")  # a method or a function called inside a module, not a submodule


def looks_like_torchscript(names: frozenset[str]) -> bool:
    """A zip archive with TorchScript's ``code/`` folder and ``constants.pkl`` (torch.save has neither)."""
    return any(_entry(n) == "constants.pkl" for n in names) and any(_entry(n).startswith("code/") for n in names)


def _entry(name: str) -> str:
    return name.split("/", 1)[1] if "/" in name else name


def load_torchscript_program(data: bytes, source: str) -> "TorchScriptGenerator":
    try:
        with warnings.catch_warnings():  # torch.jit.load warns that TorchScript is deprecated
            warnings.simplefilter("ignore")
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError for a broken archive or unknown operators
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ProgramError(f"{source} cannot be loaded as TorchScript ({type(exc).__name__}: {first})") from None
    return TorchScriptGenerator(module.eval(), source)


def _module_path(node) -> tuple[str, ...]:
    path = []
    for name, _type in _STEP.findall(node.getModuleHierarchy()):
        if name in _NOT_A_MODULE:
            break
        path.append(name)
    return tuple(path)


def _inlined(module) -> torch._C.Graph:
    graph = module.forward.graph.copy()
    torch._C._jit_pass_inline(graph)
    return graph


class TorchScriptGenerator(ProgramGenerator):
    kind = "torchscript"
    label = "TorchScript program"

    def __init__(self, module: torch.jit.ScriptModule, source: str):
        super().__init__(source)
        self.program = module
        self._names: tuple[str, ...] | None = None
        self._functions: dict[tuple[str, ...], object] = {}  # names -> compiled feature function

    def run(self, x: Tensor) -> Tensor:
        return self.program(x)

    def _set_mode(self, mode: bool) -> None:
        self.program.train(mode)

    def __deepcopy__(self, memo) -> "TorchScriptGenerator":  # compiled feature functions are not copied
        twin = TorchScriptGenerator(copy.deepcopy(self.program, memo), self.source)
        twin.input_nc, twin.output_nc, twin.training = self.input_nc, self.output_nc, self.training
        return twin

    def layer_names(self) -> list[str]:
        if self._names is None:
            self._names = _layer_names(self.program)
        return list(self._names)

    def _features(self, x: Tensor, names: tuple[str, ...]) -> tuple[Tensor, dict[str, Tensor]]:
        if names not in self._functions:
            self._functions[names] = _feature_function(self.program, names)
        out, *features = self._functions[names](self.program._c, x)
        return out, dict(zip(names, features))


def _layer_names(module) -> tuple[str, ...]:
    """The submodules (in ``named_modules`` order) that some operator of the inlined forward runs in."""
    ran: set[str] = set()
    for node in _inlined(module).nodes():
        path = _module_path(node)
        ran.update(".".join(path[:depth]) for depth in range(1, len(path) + 1))
    return tuple(name for name, _ in module.named_modules() if name and name in ran)


def _feature_function(module, names: tuple[str, ...]):
    """A TorchScript function of (module, x) returning (output, feature of each named layer)."""
    graph = _inlined(module)
    nodes = list(graph.nodes())
    paths = {node: _module_path(node) for node in nodes}
    values = [_layer_output(graph, nodes, paths, tuple(name.split(".")), name) for name in names]
    clones = [_clone_after(graph, value) for value in values]
    ret = graph.return_node()
    output = ret.input()
    pack = graph.create("prim::TupleConstruct", [output, *clones])
    pack.output().setType(torch._C.TupleType([output.type(), *(c.type() for c in clones)]))
    pack.insertBefore(ret)
    graph.eraseOutput(0)
    graph.registerOutput(pack.output())
    return torch._C._create_function_from_graph("ganas_teacher_features", graph)


def _layer_output(graph, nodes, paths, target: tuple[str, ...], name: str):
    """The last tensor computed inside module ``target`` that something outside it uses."""
    inside = [n for n in nodes if paths[n][:len(target)] == target]
    members = set(inside)
    returned = set(graph.return_node().inputs())
    found = None
    for node in inside:
        for value in node.outputs():
            if not value.type().isSubtypeOf(torch._C.TensorType.get()):
                continue
            if value in returned or any(use.user not in members for use in value.uses()):
                found = value
    if found is None:
        raise ProgramError(f"layer {name!r} of the TorchScript program gives no tensor to the rest of the network "
                           "at the top level of its forward (a module inside a loop or branch, or one whose output "
                           "is not a tensor); name another layer")
    return found


def _clone_after(graph, value):
    none = graph.insertConstant(None)
    clone = graph.create("aten::clone", [value, none])
    clone.insertAfter(value.node())
    none.node().moveBefore(clone)
    clone.output().setType(value.type())
    return clone.output()
