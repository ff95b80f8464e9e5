"""What a torch.export archive (``.pt2``) must not hold for ganas to load it: anything that runs Python.

``torch.export.load`` is not weights-only: it unpickles tensors that it stored with pickle (and falls back
to ``weights_only=False`` for its example inputs), unpickles custom and opaque objects, loads AOTInductor
shared libraries, ``exec``s the archive's guard code and ``sympify``s (``eval``s) its shape expressions,
and the graph may call any ``torch.*`` function by name. So before it sees a file, every one of these is
checked here: pickles must load with ``weights_only=True``; no custom or opaque objects, no compiled code;
guards and shape expressions must be arithmetic over sizes; graph nodes may call tensor operators
(``torch.ops.*``), symbolic-size helpers and arithmetic only. What passes is data and operators, as a
TorchScript file is.
"""
from __future__ import annotations

import ast
import io
import json
import math
import re
import zipfile
from typing import Any, Iterator

from .base import ProgramError

_OPERATORS = {"getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos", "abs", "eq", "ne",
              "lt", "le", "gt", "ge", "and_", "or_", "not_", "xor", "invert", "lshift", "rshift"}
_TARGET = re.compile(r"(torch\.ops\.[\w.]+|torch\.(_?sym_\w+|_assert\w*|_check\w*)|math\.[a-z]\w*|_operator\.(\w+))")
_SIZE_METHODS = {"size", "stride", "storage_offset", "dim", "numel"}
_SYMPY_CALLS = {"Add", "Mul", "Pow", "Integer", "Rational", "Float", "Symbol", "Max", "Min", "Mod", "floor", "ceiling",
                "Abs", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "Piecewise", "ITE", "Equality",
                "Unequality", "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan", "Tuple", "sqrt"}


def check_pt2_archive(data: bytes, source: str) -> None:
    """Refuse ``data`` (a zip) unless loading it runs no Python from it; see the module docstring."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = {_relative(info.filename): info.filename for info in archive.infolist()}
        read = lambda name: archive.read(entries[name])  # noqa: E731
        if "archive_format" not in entries:
            raise ProgramError(f"{source} is a torch.export archive from PyTorch 2.7 or older, whose weights are "
                               "pickled; load it in your own code and save it again with torch.export.save")
        compiled = [name for name in entries if name.startswith("data/aotinductor/")]
        if compiled:
            raise ProgramError(f"{source} holds AOTInductor compiled code ({compiled[0]}), a shared library that "
                               "loading would run; ganas runs no code from a file: save the torch.export program "
                               "alone (torch.export.save)")
        for name in entries:
            if name.endswith("_config.json") and name.startswith(("data/weights/", "data/constants/")):
                _check_payloads(name, json.loads(read(name)), read, source)
            elif name.startswith("data/sample_inputs/"):
                _weights_only(read(name), f"{source}'s {name}")
            elif name.startswith("models/") and name.endswith(".json"):
                _check_program(json.loads(read(name)), source)


def _relative(name: str) -> str:
    return name.split("/", 1)[1] if "/" in name else name


def _check_payloads(name: str, config: dict, read, source: str) -> None:
    folder = name.rsplit("/", 1)[0]
    for fqn, payload in (config.get("config") or {}).items():
        path = str(payload.get("path_name", ""))
        if path.startswith(("custom_obj", "opaque_obj")):
            raise ProgramError(f"{source} holds a pickled Python object for {fqn} ({path}) that loading would "
                               "import and run; ganas loads tensors and operators only")
        if payload.get("use_pickle"):
            _weights_only(read(f"{folder}/{path}"), f"{source}'s {fqn}")


def _weights_only(payload: bytes, what: str) -> None:
    import torch

    try:
        torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # the weights-only unpickler refuses every global it does not know
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ProgramError(f"{what} is a pickle that does not load with weights_only=True ({first}); ganas never "
                           "unpickles code: save the program again from tensors only") from None


def _check_program(model: dict, source: str) -> None:
    for target in _node_targets(model):
        match = _TARGET.fullmatch(target)
        if not match or (match.group(3) is not None and match.group(3) not in _OPERATORS):
            raise ProgramError(f"{source}'s graph calls {target}, which is no tensor operator; ganas runs programs "
                               "made of PyTorch operators (torch.ops.*) only")
    for text in _strings_under(model, "expr_str"):
        _check_expression(text, _SYMPY_CALLS | _torch_sympy_functions(), (), source, "shape expression")
    for text in model.get("guards_code") or []:
        _check_expression(str(text), _guard_names(), _SIZE_METHODS, source, "guard")


def _node_targets(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("target"), str) and "inputs" in value:
            yield value["target"]
        for item in value.values():
            yield from _node_targets(item)
    elif isinstance(value, list):
        for item in value:
            yield from _node_targets(item)


def _strings_under(value: Any, key: str) -> Iterator[str]:
    if isinstance(value, dict):
        for k, item in value.items():
            if k == key and isinstance(item, str):
                yield item
            else:
                yield from _strings_under(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from _strings_under(item, key)


def _check_expression(text: str, calls: set[str], methods: set[str], source: str, what: str) -> None:
    """Refuse ``text`` unless it is arithmetic, comparisons, constants, names and calls of ``calls`` (or of
    ``methods`` on a value, or of ``math`` functions): nothing that reaches an attribute, a dunder or Python."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ProgramError(f"{source} holds a {what} that is not an expression: {text[:120]!r}") from None
    for node in ast.walk(tree):
        if not _allowed(node, calls, methods):
            raise ProgramError(f"{source} holds a {what} that loading would run as Python ({text[:120]!r}); ganas "
                               "loads programs whose guards and shapes are arithmetic over sizes only")


_PLAIN = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Load, ast.operator, ast.unaryop,
          ast.boolop, ast.cmpop, ast.keyword, ast.Tuple)


def _allowed(node: ast.AST, calls: set[str], methods: set[str]) -> bool:
    if isinstance(node, _PLAIN):
        return not isinstance(node, ast.keyword) or not (node.arg or "").startswith("_")
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float, bool, str)) and not str(node.value).startswith("__")
    if isinstance(node, ast.Name):
        return not node.id.startswith("_")
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant)
    if isinstance(node, ast.Attribute):  # only as the callee of an allowed call (checked there)
        return node.attr in methods or (isinstance(node.value, ast.Name) and node.value.id == "math"
                                        and callable(getattr(math, node.attr, None)) and not node.attr.startswith("_"))
    if isinstance(node, ast.Call):
        func = node.func
        return (isinstance(func, ast.Name) and func.id in calls) or isinstance(func, ast.Attribute)
    return False


def _torch_sympy_functions() -> set[str]:
    import torch.utils._sympy.functions as functions

    return {name for name in dir(functions) if name[:1].isupper()}


def _guard_names() -> set[str]:
    from torch.fx.experimental.symbolic_shapes import SYMPY_INTERP

    return {name for name, value in SYMPY_INTERP.items() if callable(value) and name != "math"}
