"""Teachers given as programs: TorchScript, torch.export archives and ONNX models (see :mod:`.base`)."""
from .base import ProgramError, ProgramGenerator
from .exported import ExportedGenerator, load_exported_program, looks_like_pt2
from .onnxmodel import OnnxGenerator, load_onnx_program, looks_like_onnx
from .torchscript import TorchScriptGenerator, load_torchscript_program, looks_like_torchscript

__all__ = ["ExportedGenerator", "OnnxGenerator", "ProgramError", "ProgramGenerator", "TorchScriptGenerator",
           "load_exported_program", "load_onnx_program", "load_torchscript_program", "looks_like_onnx",
           "looks_like_pt2", "looks_like_torchscript"]
