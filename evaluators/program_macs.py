"""MACs and parameters of a program teacher (TorchScript, torch.export, ONNX), in the papers' convention.

A program has no ganas architecture, so no closed form and no thop module hooks. A TorchScript or
torch.export program runs PyTorch operators: one forward pass under a dispatch mode counts them with
:mod:`evaluators.macs`'s rules (conv and transposed conv: output elements x C_in / groups x kernel; an
affine norm: one MAC per element; a matrix product: output elements x inner size; the rest free). An
ONNX model is counted off its graph with the same rules, at the image size (its
exporter may have folded BatchNorm into the convs: then it is counted as the graph holds it), its
sizes read off one ONNX Runtime run.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .macs import MacsCount, parse_size

aten = torch.ops.aten


def _convolution(args, out) -> int:
    weight, transposed, groups = args[1], bool(args[6]), int(args[8])
    per_output = weight.shape[0] // groups if transposed else weight.shape[1]
    return out.numel() * per_output * math.prod(weight.shape[2:])  # the output side, transposed too


def _norm(weight_index: int) -> Callable[[Sequence[Any], Any], int]:
    def count(args, out) -> int:
        affine = len(args) > weight_index and args[weight_index] is not None
        return args[0].numel() if affine else 0
    return count


def _matmul(args, out) -> int:
    first = args[1] if len(args) == 3 else args[0]  # addmm(bias, a, b)
    return out.numel() * first.shape[-1]


_RULES: dict[Any, Callable[[Sequence[Any], Any], int]] = {
    aten.convolution: _convolution, aten._convolution: _convolution,  # TorchScript calls the latter
    aten.native_batch_norm: _norm(1), aten._native_batch_norm_legit: _norm(1),
    aten._native_batch_norm_legit_no_training: _norm(1), aten.native_group_norm: _norm(1),
    aten.native_layer_norm: _norm(2),
    aten.mm: _matmul, aten.addmm: _matmul, aten.bmm: _matmul,
}


class _OperatorCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.macs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        rule = _RULES.get(func.overloadpacket)
        if rule is not None:
            self.macs += int(rule(args, out[0] if isinstance(out, tuple) else out))
        return out


def count_program(program, size: int | Sequence[int] = (256, 256), in_channels: int | None = None) -> MacsCount:
    """MACs and parameters of one ``1 x C x H x W`` pass of a :class:`supernet.programs.ProgramGenerator`."""
    height, width = parse_size(size)
    channels = in_channels or program.input_nc or 3
    model = getattr(program, "onnx_model", None)  # ONNX Runtime runs no PyTorch operators: count the graph
    if model is not None:
        return _onnx_count(model, (1, channels, height, width))
    x = torch.zeros(1, channels, height, width)
    with torch.no_grad(), _OperatorCounter() as counter:
        program(x)
    return MacsCount(counter.macs, sum(p.numel() for p in program.parameters()))


# -- ONNX graphs ---------------------------------------------------------------------------------------------

def _onnx_count(model, shape: tuple[int, int, int, int]) -> MacsCount:
    import onnx
    from onnx import numpy_helper

    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node
                 if n.op_type == "Constant" and n.attribute and n.attribute[0].type == onnx.AttributeProto.TENSOR}
    values = {**constants, **initializers}
    shapes = _onnx_shapes(model, shape, initializers)
    macs = params = 0
    for node in model.graph.node:
        weights = [values[name] for name in node.input[1:] if name in initializers]
        if node.op_type in ("Conv", "ConvTranspose"):
            weight = values[node.input[1]]
            groups = next((a.i for a in node.attribute if a.name == "group"), 1)
            per_output = weight.shape[0] // groups if node.op_type == "ConvTranspose" else weight.shape[1]
            macs += math.prod(shapes[node.output[0]]) * per_output * math.prod(weight.shape[2:])
            params += sum(w.size for w in weights)
        elif node.op_type in ("Gemm", "MatMul"):
            macs += math.prod(shapes[node.output[0]]) * shapes[node.input[0]][-1]
            params += sum(w.size for w in weights)
        elif node.op_type.endswith("Normalization") and _affine(node, values):
            macs += math.prod(shapes[node.input[0]])
            params += sum(values[name].size for name in node.input[1:3])
    return MacsCount(int(macs), int(params))


_READS = {"Conv": 0, "ConvTranspose": 0, "Gemm": 1, "MatMul": 1}  # counted op -> how many of its inputs' shapes


def _onnx_shapes(model, shape: tuple[int, ...], initializers) -> dict[str, tuple[int, ...]]:
    """The shapes of the values the count reads, from one ONNX Runtime run on zeros: shape inference cannot
    follow every exporter's graph (pads computed at run time leave sizes unknown)."""
    import numpy as np
    import onnx
    import onnxruntime

    wanted: dict[str, None] = {}
    for node in model.graph.node:
        if node.op_type in _READS:
            wanted.update(dict.fromkeys([node.output[0], *node.input[:_READS[node.op_type]]]))
        elif node.op_type.endswith("Normalization"):
            wanted[node.input[0]] = None
    image = next(i.name for i in model.graph.input if i.name not in initializers)
    names = [name for name in wanted if name != image and name not in initializers]
    probe = onnx.ModelProto.FromString(model.SerializeToString())
    known = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in names if name not in known)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    results = session.run(names, {image: np.zeros(shape, dtype=np.float32)})
    return {image: tuple(shape), **{name: tuple(r.shape) for name, r in zip(names, results)}}


def _affine(node, values) -> bool:
    """A norm whose scale is not all ones or whose bias is not all zeros (an exporter writes both always)."""
    scale, bias = (values.get(name) for name in node.input[1:3]) if len(node.input) >= 3 else (None, None)
    if scale is None or bias is None:
        return True
    return bool((scale != 1).any() or (bias != 0).any())
