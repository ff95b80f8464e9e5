"""An ONNX model as a teacher, run by ONNX Runtime on the CPU.

An ONNX file is a protobuf of operators and weights: no code. ganas reads it from its bytes, so a model
that keeps its weights in external files (which ONNX Runtime would read from paths the model names) is
refused. ONNX Runtime returns a model's outputs only, so an ONNX teacher gives no intermediate features:
it is distilled by its outputs.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .base import ProgramError, ProgramGenerator

_MODEL_TAG = b"\x08"  # a ModelProto starts with field 1, ir_version, a varint


def looks_like_onnx(data: bytes) -> bool:
    if data[:1] != _MODEL_TAG:
        return False
    try:
        return len(_parse(data).graph.node) > 0
    except Exception:  # not a protobuf of an ONNX model
        return False


def _parse(data: bytes):
    import onnx

    return onnx.load_model_from_string(data)


def load_onnx_program(data: bytes, source: str) -> "OnnxGenerator":
    import onnx
    import onnxruntime

    model = _parse(data)
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise ProgramError(f"{source} keeps its weights in external files ({external[0]}, ...), which ganas does not "
                           "read; save the model as one file: onnx.save(model, PATH, save_as_external_data=False)")
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ProgramError(f"a generator takes one image batch; {source} takes {len(inputs)} inputs "
                           f"({', '.join(i.name for i in inputs)})")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    try:
        session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # unknown operators, a broken graph
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ProgramError(f"ONNX Runtime cannot run {source} ({type(exc).__name__}: {first})") from None
    return OnnxGenerator(model, session, inputs[0].name, source, shape if len(shape) == 4 else None)


class OnnxGenerator(ProgramGenerator):
    kind = "onnx"
    label = "ONNX model"
    no_features = "ONNX Runtime returns a model's outputs only"

    def __init__(self, model, session, input_name: str, source: str, input_shape: tuple | None):
        super().__init__(source, input_shape)
        self.onnx_model = model  # read by the MACs count
        self.session, self.input_name = session, input_name
        self.output_name = session.get_outputs()[0].name

    def run(self, x: Tensor) -> Tensor:
        try:
            (out,) = self.session.run([self.output_name], {self.input_name: x.detach().cpu().float().numpy()})
        except Exception as exc:  # ONNX Runtime's own error types: a shape or type the model does not take
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise ProgramError(f"{self.source} refuses an input of shape {tuple(x.shape)} ({first})") from None
        return torch.from_numpy(np.ascontiguousarray(out)).to(x.device)

    def __deepcopy__(self, memo) -> "OnnxGenerator":  # a session is not modified by runs: share it
        twin = OnnxGenerator(self.onnx_model, self.session, self.input_name, self.source, self.input_shape)
        twin.input_nc, twin.output_nc, twin.training = self.input_nc, self.output_nc, self.training
        return twin
