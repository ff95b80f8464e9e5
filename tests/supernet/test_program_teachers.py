"""Programs as teachers: TorchScript, torch.export and ONNX files, detected by content, loaded without running
Python from them, computing what the module they were made from computes, and giving named layers' features.

The generator is tests/supernet/program_generators.TinyGenerator, written independently of ganas's modules.
"""
import io
import json
import os
import zipfile

import pytest
import torch

from supernet.errors import CheckpointError, InputSizeError
from supernet.programs import ProgramError, ProgramGenerator
from supernet.teachers import detect_teacher_kind, list_teacher_kinds, load_teacher, TeacherFile

from .program_generators import rewrite_zip, tiny_generator, write_program

KINDS = {"torchscript": "torchscript", "traced": "torchscript", "pt2": "torch.export", "onnx": "onnx"}
LAYERS = ["stem", "stem.2", "down", "blocks.0", "blocks.2", "up.4"]  # stem.2 and up.4: an in-place ReLU follows


def _reference(module, x, names):
    """The module's output and its named layers' outputs, recorded by forward hooks on the eager module."""
    recorded, modules = {}, dict(module.named_modules())
    handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: recorded.__setitem__(n, o.clone()))
               for n in names]
    try:
        with torch.no_grad():
            return module(x), recorded
    finally:
        for handle in handles:
            handle.remove()


def _loaded(tmp_path, kind, **options) -> ProgramGenerator:
    """``tiny_generator(seed=1)`` saved as ``kind`` (``dynamic``: batch and size free), loaded as a teacher."""
    path = write_program(tmp_path / f"G.{kind}", kind, **options)
    loaded = load_teacher(path.read_bytes(), str(path))
    assert loaded.kind == KINDS[kind] and loaded.is_program and loaded.imported is None
    return loaded.generator


def test_the_registry_lists_every_kind_in_detection_order():
    assert list_teacher_kinds() == ["torchscript", "torch.export", "checkpoint", "onnx"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_program_computes_what_its_module_computes(tmp_path, kind):
    module, program = tiny_generator(seed=1), _loaded(tmp_path, kind)
    x = torch.randn(3, 3, 40, 48, generator=torch.Generator().manual_seed(0))  # another batch and size
    with torch.no_grad():
        assert torch.allclose(program(x), module(x), atol=1e-5)
    assert (program.input_nc, program.output_nc) == (3, 3)


@pytest.mark.parametrize("kind", ["torchscript", "traced", "pt2"])
def test_named_layers_give_the_features_forward_hooks_see(tmp_path, kind):
    module, program = tiny_generator(seed=1), _loaded(tmp_path, kind)
    assert set(LAYERS) <= set(program.layer_names())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    expected, features = _reference(module, x, LAYERS)
    with torch.no_grad():
        out, got = program.forward_with_features(x, LAYERS)
    assert torch.allclose(out, expected, atol=1e-5)
    for name in LAYERS:
        assert torch.allclose(got[name], features[name], atol=1e-5), name
    assert (got["stem.2"] < 0).any()  # recorded before the in-place ReLU that follows it


def test_a_missing_layer_is_refused_naming_the_layers_there_are(tmp_path):
    program = _loaded(tmp_path, "torchscript")
    with pytest.raises(ProgramError, match=r"G.torchscript has no layer named 'blocks.7' \(--teacher-layers\); its "
                                           r"layers are named stem, stem.0, stem.1"):
        program.forward_with_features(torch.zeros(1, 3, 32, 32), ["down", "blocks.7"])


def test_an_onnx_teacher_refuses_layers_and_says_why(tmp_path):
    program = _loaded(tmp_path, "onnx")
    assert program.layer_names() == [] and program.distill_layer_names() == []
    with pytest.raises(ProgramError, match="is an ONNX model, which gives no intermediate features: ONNX Runtime "
                                           "returns a model's outputs only; drop --teacher-layers"):
        program.check_layers(["down"])


@pytest.mark.parametrize("kind", ["pt2", "onnx"])
def test_a_program_exported_at_one_shape_takes_that_size_only_and_any_batch(tmp_path, kind):
    module, program = tiny_generator(seed=1), _loaded(tmp_path, kind, dynamic=False)
    assert program.fixed_dims() == {0: 1, 1: 3, 2: 32, 3: 32}
    x = torch.randn(3, 3, 32, 32)  # run one image at a time
    with torch.no_grad():
        assert torch.allclose(program(x), module(x), atol=1e-5)
    with pytest.raises(InputSizeError, match=r"takes only 32x32 images .* not 64x64: use --size 32"):
        program(torch.zeros(1, 3, 64, 64))


def test_a_program_that_fails_on_an_input_says_so_in_one_message(tmp_path):
    program = _loaded(tmp_path, "torchscript")
    with pytest.raises(ProgramError, match=r"fails on an input of shape \(1, 1, 32, 32\) \(RuntimeError: "):
        program(torch.zeros(1, 1, 32, 32))  # one channel: the first conv takes three


def test_a_copy_runs_like_the_original(tmp_path):
    import copy

    for kind in ("torchscript", "pt2", "onnx"):
        program = _loaded(tmp_path, kind)
        x = torch.randn(1, 3, 32, 32)
        with torch.no_grad():
            assert torch.equal(copy.deepcopy(program)(x), program(x)), kind


def test_a_file_of_no_kind_is_refused_naming_the_kinds(tmp_path):
    with pytest.raises(CheckpointError, match=r"notes.txt is none of the teacher files ganas reads \(TorchScript "
                                              r"program .*ONNX model \(.onnx\)\); it starts with bytes 6e 6f 74 65"):
        load_teacher(b"notes about my generator", "notes.txt")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("photos/a.png", b"\x89PNG")
    with pytest.raises(CheckpointError, match="is none of the teacher files"):
        load_teacher(zipped.getvalue(), "photos.zip")


def test_a_weights_checkpoint_is_told_apart_from_programs(tmp_path):
    torch.save(tiny_generator().state_dict(), tmp_path / "G.pth")
    file = TeacherFile.of((tmp_path / "G.pth").read_bytes(), "G.pth")
    assert detect_teacher_kind(file).name == "checkpoint"


def test_state_dict_options_are_refused_for_a_program(tmp_path):
    from supernet.teachers import TeacherOptions

    path = write_program(tmp_path / "G.ts", "traced")
    with pytest.raises(CheckpointError, match="--teacher-arch, --teacher-ngf and --teacher-map .* do not apply"):
        load_teacher(path.read_bytes(), str(path), TeacherOptions(arch="resnet_9blocks"))


def test_a_recorded_kind_must_still_be_the_files_kind(tmp_path):
    path = write_program(tmp_path / "G.ts", "traced")
    with pytest.raises(CheckpointError, match="was recorded as a onnx teacher but is now TorchScript"):
        load_teacher(path.read_bytes(), str(path), kind="onnx")


# -- a torch.export archive runs no Python from the file ------------------------------------------------------

@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "ran"
    yield path
    assert not path.exists(), "code from the archive ran"


def _pt2(tmp_path):
    return write_program(tmp_path / "G.pt2", "pt2")


def _refused(path, match):
    with pytest.raises(ProgramError, match=match):
        load_teacher(path.read_bytes(), str(path))


def test_guard_code_that_would_run_python_is_refused(tmp_path, marker):
    path = _pt2(tmp_path)

    def evil(name, data):
        if name.endswith("models/model.json"):
            model = json.loads(data)
            model["guards_code"] = [f"__import__('os').system('touch {marker}') == 0"]
            return json.dumps(model).encode()
        return data

    rewrite_zip(path, evil)
    _refused(path, "holds a guard that loading would run as Python")


def test_a_shape_expression_that_would_run_python_is_refused(tmp_path, marker):
    path = _pt2(tmp_path)

    def evil(name, data):
        if name.endswith("models/model.json"):
            return data.replace(b'"expr_str": "', f'"expr_str": "open(\'{marker}\', \'w\') or '.encode(), 1)
        return data

    rewrite_zip(path, evil)
    _refused(path, "holds a shape expression that loading would run as Python")


def test_a_graph_that_calls_a_python_function_is_refused(tmp_path):
    path = _pt2(tmp_path)
    rewrite_zip(path, lambda name, data: data.replace(b'"torch.ops.aten.tanh.default"', b'"torch.load"')
                if name.endswith("models/model.json") else data)
    _refused(path, r"graph calls torch.load, which is no tensor operator")


def test_pickled_example_inputs_that_would_run_code_are_refused(tmp_path, marker):
    path = _pt2(tmp_path)

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = io.BytesIO()
    torch.save(((Payload(),), {}), evil)
    rewrite_zip(path, lambda name, data: evil.getvalue() if "sample_inputs" in name else data)
    _refused(path, r"sample_inputs/model.pt is a pickle that does not load with weights_only=True")


def test_compiled_code_in_the_archive_is_refused(tmp_path):
    path = _pt2(tmp_path)
    rewrite_zip(path, lambda name, data: data, extra={"data/aotinductor/model/model.so": b"\x7fELF"})
    _refused(path, "holds AOTInductor compiled code")
