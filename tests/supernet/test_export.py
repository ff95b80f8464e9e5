"""Exported subnets (torch.export, TorchScript, ONNX) compute what the PyTorch module computes."""
import re

import onnx
import onnxruntime
import pytest
import torch

from nas.cli import main
from nas.cli.commands.export import FORMAT_NAMES
from supernet import (CheckpointError, ConfigError, InputSizeError, create_generator, extract_subnet,
                      save_generator)
from supernet.export import (ExportError, export_generator, generator_for_export, get_format, list_formats,
                             read_export_metadata, verify_export)

# (architecture, hyper-parameters, a config inside them, export size)
NETS = {
    "mobile_resnet": ("mobile_resnet", dict(ngf=8, n_blocks=3), (8, 4, 6, 2, 8, 4, 6, 3), 32),
    "unet": ("unet", dict(ngf=8, num_downs=5), (6, 8, 4, 8, 3), 32),
    "resnet": ("resnet", dict(ngf=8, n_blocks=3), (4, 8, 6, 8, 2, 4, 8, 6), 32),
}


def _onnx(path, x):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


# Each format read back with its runtime's own API, not through supernet.export.
RUNTIMES = {
    "pt2": lambda path, x: torch.export.load(path).module()(x),
    "torchscript": lambda path, x: torch.jit.load(str(path))(x),
    "onnx": _onnx,
}


def _image(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _supernet(name):
    arch, hparams, _, _ = NETS[name]
    torch.manual_seed(0)
    supernet = create_generator(arch, elastic=True, **hparams)
    if supernet.norm == "batch":  # give BatchNorm real running statistics, so eval mode matters
        supernet.train()
        with torch.no_grad():
            for seed in range(3):
                supernet(_image(4, 3, 32, 32, seed=seed) * 2 + 0.5)
    return supernet


@pytest.fixture(scope="module")
def subnets():
    return {name: extract_subnet(_supernet(name), NETS[name][2]).eval() for name in NETS}


def test_every_format_has_an_independent_runtime_in_these_tests():
    assert sorted(RUNTIMES) == list_formats()
    assert sorted(FORMAT_NAMES) == list_formats()  # the CLI help lists them without importing torch


@pytest.mark.parametrize("fmt", sorted(RUNTIMES))
@pytest.mark.parametrize("name", sorted(NETS))
def test_export_matches_pytorch(subnets, tmp_path, name, fmt):
    subnet = subnets[name]
    size = NETS[name][3]
    path = export_generator(subnet, tmp_path / f"net{get_format(fmt).suffix}", fmt, size)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no partial or external-data files
    x = _image(1, 3, size, size, seed=5)
    with torch.no_grad():
        expected = subnet(x)
        got = RUNTIMES[fmt](path, x)
    assert got.shape == expected.shape == (1, 3, size, size)
    assert expected.std() > 0.01  # a real image, not a constant that anything would match
    assert (got - expected).abs().max() <= 1e-4
    meta = read_export_metadata(path, fmt)
    assert meta["arch"] == NETS[name][0] and meta["config"] == "_".join(map(str, NETS[name][2]))
    assert meta["input_shape"] == [1, 3, size, size] and meta["dynamic"] == []


def test_export_uses_eval_mode_and_restores_the_callers_mode(tmp_path):
    supernet = _supernet("unet")
    subnet = extract_subnet(supernet, NETS["unet"][2]).train()
    x = _image(1, 3, 32, 32, seed=7)
    path = export_generator(subnet, tmp_path / "u.pt2", "pt2", 32)
    assert subnet.training
    with torch.no_grad():
        got = RUNTIMES["pt2"](path, x.clone())
        eval_out = subnet.eval()(x.clone())
        train_out = subnet.train()(x.clone())  # after eval_out: train mode updates the running statistics
    assert (train_out - eval_out).abs().max() > 1e-3  # BatchNorm statistics make the modes differ
    assert (got - eval_out).abs().max() <= 1e-5


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_dynamic_batch_and_spatial_size(tmp_path, fmt):
    torch.manual_seed(0)
    net = create_generator("mobile_resnet", ngf=8, n_blocks=3).eval()
    path = export_generator(net, tmp_path / f"dyn{get_format(fmt).suffix}", fmt, 16, ["batch", "spatial"])
    for shape in [(1, 3, 16, 16), (3, 3, 16, 16), (2, 3, 8, 24), (1, 3, 32, 20)]:
        x = _image(*shape, seed=sum(shape))
        with torch.no_grad():
            expected = net(x)
            got = RUNTIMES[fmt](path, x)
        assert got.shape == expected.shape == shape
        assert (got - expected).abs().max() <= 1e-4
    check = verify_export(net, path, fmt, 16, ["spatial", "batch"])
    assert check.shapes == ((1, 3, 16, 16), (3, 3, 16, 16), (1, 3, 20, 24))
    assert check.max_abs_diff <= 1e-4


def test_static_onnx_export_has_a_fixed_shape(subnets, tmp_path):
    path = export_generator(subnets["mobile_resnet"], tmp_path / "s.onnx", "onnx", 32)
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 32, 32]
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        _onnx(path, _image(1, 3, 64, 64))


def test_verification_detects_a_file_from_another_network(subnets, tmp_path):
    path = export_generator(subnets["resnet"], tmp_path / "r.ts", "torchscript", 32)
    assert verify_export(subnets["resnet"], path, "torchscript", 32).max_abs_diff <= 1e-6
    torch.manual_seed(1)
    other = create_generator("resnet", config=NETS["resnet"][2], **NETS["resnet"][1])
    assert verify_export(other, path, "torchscript", 32).max_abs_diff > 1e-2


def test_bad_export_requests_are_typed_errors(subnets, tmp_path):
    net = subnets["mobile_resnet"]
    with pytest.raises(ExportError, match="unknown export format 'tflite'; registered: onnx, pt2, torchscript"):
        export_generator(net, tmp_path / "x", "tflite", 32)
    with pytest.raises(InputSizeError, match="30x32 is not a multiple of 4"):
        export_generator(net, tmp_path / "x.onnx", "onnx", (30, 32))
    with pytest.raises(ExportError, match="torchscript cannot export a dynamic batch.*use onnx or pt2"):
        export_generator(net, tmp_path / "x.ts", "torchscript", 32, ["batch"])
    with pytest.raises(ExportError, match="unknown dynamic axis 'channels'"):
        export_generator(net, tmp_path / "x.pt2", "pt2", 32, ["channels"])
    with pytest.raises(InputSizeError, match="at least 8x8"):
        export_generator(net, tmp_path / "x.pt2", "pt2", 4, ["spatial"])
    with pytest.raises(ExportError, match="elastic supernet; extract a static subnet"):
        export_generator(_supernet("mobile_resnet"), tmp_path / "x.pt2", "pt2", 32)
    with pytest.raises(ExportError, match="is a directory"):
        export_generator(net, tmp_path, "pt2", 32)
    assert list(tmp_path.iterdir()) == []


def test_generator_for_export_from_supernet_and_static_checkpoints(tmp_path):
    supernet = _supernet("mobile_resnet").eval()
    config = NETS["mobile_resnet"][2]
    text = "_".join(map(str, config))
    super_path = save_generator(supernet, tmp_path / "super.pt")
    subnet = generator_for_export(super_path, text).eval()
    x = _image(1, 3, 32, 32, seed=3)
    with torch.no_grad():
        assert (subnet(x) - supernet(x, config)).abs().max() <= 1e-5
    assert not subnet.elastic and subnet.config == config
    with pytest.raises(ConfigError, match="holds a mobile_resnet supernet; give the subnet.*--config, e.g. 8_8_8"):
        generator_for_export(super_path)
    with pytest.raises(ConfigError, match="position 0 .* is 16; this supernet allows 1..8"):
        generator_for_export(super_path, "16_8_8_8_8_8_8_8")

    static_path = save_generator(subnet, tmp_path / "static.pt")
    assert generator_for_export(static_path).config == config
    assert generator_for_export(static_path, text).config == config
    with pytest.raises(ConfigError, match=f"static mobile_resnet generator at config {text}, not 8_8_8_8_8_8_8_8"):
        generator_for_export(static_path, "8_8_8_8_8_8_8_8")
    with pytest.raises(CheckpointError, match="does not exist"):
        generator_for_export(tmp_path / "missing.pt", text)


def test_cli_exports_a_subnet_of_a_supernet(tmp_path, capsys):
    supernet = _supernet("unet").eval()
    config = NETS["unet"][2]
    checkpoint = save_generator(supernet, tmp_path / "super.pt")
    out = tmp_path / "deploy" / "unet.onnx"
    code = main(["export", "--checkpoint", str(checkpoint), "--config", "_".join(map(str, config)),
                 "--format", "onnx", "--out", str(out), "--size", "64x32", "--dynamic", "batch"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "input 1x3x64x32, dynamic batch" in printed and "verified on 1x3x64x32, 3x3x64x32" in printed
    x = _image(2, 3, 64, 32, seed=4)
    with torch.no_grad():
        assert (_onnx(out, x) - supernet(x, config)).abs().max() <= 1e-4


@pytest.mark.parametrize("case, message", [
    ("missing", "checkpoint .*missing.pt does not exist"),
    ("config", "static resnet generator at config 8_8_8_8_8_8_8_8, not 8_8_8_8_8_8_8_4"),
    ("format", "unknown export format 'tflite'; registered: onnx, pt2, torchscript"),
    ("size", "input size 250x256 is not a multiple of 4"),
])
def test_cli_bad_input_exits_2_with_one_clear_message(tmp_path, capsys, case, message):
    torch.manual_seed(0)
    static = save_generator(create_generator("resnet", ngf=8, n_blocks=3), tmp_path / "g.pt")
    argv = {"checkpoint": str(static), "config": "8_8_8_8_8_8_8_8", "format": "pt2", "size": "256"}
    argv.update({"missing": {"checkpoint": str(tmp_path / "missing.pt")}, "config": {"config": "8_8_8_8_8_8_8_4"},
                 "format": {"format": "tflite"}, "size": {"size": "250x256"}}[case])
    args = ["export", "--out", str(tmp_path / "o.pt2")]
    for key, value in argv.items():
        args += [f"--{key}", value]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganas export: error: ")
    assert re.search(message, err[0])
    assert not (tmp_path / "o.pt2").exists()
