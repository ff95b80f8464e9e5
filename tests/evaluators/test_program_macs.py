"""A program teacher's MACs and parameters, counted from its operators (TorchScript, torch.export) or its graph
(ONNX), agree with the closed form of the ganas generator the program was made from, for every norm variant."""
import io
import logging
import warnings

import pytest
import torch

from evaluators.closed_form import closed_form_count
from evaluators.program_macs import count_program
from supernet import create_generator
from supernet.teachers import load_teacher

SIZE = (32, 64)
GENERATORS = {
    "resnet-instance": ("resnet", dict(ngf=8, n_blocks=3, norm="instance")),
    "resnet-instance_affine": ("resnet", dict(ngf=8, n_blocks=3, norm="instance_affine")),
    "resnet-batch": ("resnet", dict(ngf=8, n_blocks=3, norm="batch")),
    "mobile_resnet": ("mobile_resnet", dict(ngf=8, n_blocks=3)),
    "unet": ("unet", dict(ngf=8, num_downs=5)),
}


def _generator(arch, hparams):
    torch.manual_seed(0)
    generator = create_generator(arch, **hparams).eval()
    for module in generator.modules():  # norms away from 1 and 0, as trained ones are (an ONNX norm of ones and
        if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)) and module.affine:  # zeros is free)
            torch.nn.init.normal_(module.weight)
            torch.nn.init.normal_(module.bias)
    return generator


def _program(generator, kind):
    x = torch.randn(1, 3, *SIZE)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "torchscript":
            torch.jit.save(torch.jit.trace(generator, x), buffer)
        elif kind == "pt2":
            torch.export.save(torch.export.export(generator, (x,)), buffer)
        else:
            logging.disable(logging.WARNING)
            try:
                torch.onnx.export(generator, (x,), buffer, dynamo=False)
            finally:
                logging.disable(logging.NOTSET)
    return load_teacher(buffer.getvalue(), f"G.{kind}").generator


# the ONNX exporter folds an eval-mode BatchNorm into the conv before it (where it can): counted as exported
CASES = [(name, kind) for name in sorted(GENERATORS) for kind in ("torchscript", "pt2", "onnx")
         if not (kind == "onnx" and name in ("resnet-batch", "unet"))]


@pytest.mark.parametrize("name, kind", CASES)
def test_a_program_is_counted_as_the_closed_form_counts_its_generator(name, kind):
    arch, hparams = GENERATORS[name]
    generator = _generator(arch, hparams)
    expected = closed_form_count(arch, tuple(generator.config), SIZE, **generator.hparams())
    assert count_program(_program(generator, kind), SIZE) == expected
