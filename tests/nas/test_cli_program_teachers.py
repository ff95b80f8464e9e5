"""Programs and other depths as teachers through the CLI: train supernet, finetune, supernet register.

The programs are tests/supernet/program_generators.TinyGenerator (independent of ganas's modules) saved as
TorchScript, a torch.export archive and an ONNX model; bad teachers are refused with one message, exit status 2
and nothing written.
"""
import pytest
import torch

from imagedata.splits import SPLIT_FILE
from supernet.programs import ProgramGenerator
from tests.cli_run import run_cli as _run
from tests.supernet.program_generators import save_program, tiny_generator, write_program

TINY = ["--steps", "1", "--size", "32", "--quiet", "--netd", "n_layers", "--n-layers-d", "1", "--ndf", "4"]
SUPERNET = ["train", "supernet", "--method", "gan-compression"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from imagedata import MakeOptions, make_dataset

    root = tmp_path_factory.mktemp("programs")
    for folder in ("data", "fresh"):  # "fresh" is only given to refused commands: it must never get a split
        make_dataset("labels2scene", root / folder, MakeOptions(size=32, count=6, val_count=2), progress=False)
    for kind, name in (("torchscript", "G.ts"), ("pt2", "G.pt2"), ("onnx", "G.onnx")):
        write_program(root / name, kind)
    return root


def test_a_torchscript_teacher_with_named_layers_through_training_registration_and_finetuning(setup, capsys):
    root, data = setup, str(setup / "data" / "labelled")
    status, out, err = _run([*SUPERNET, "--data", data, "--space", "channels-16", "--blocks", "3", "--teacher",
                             str(root / "G.ts"), "--teacher-layers", "down,blocks.2", "--out", str(root / "sn"),
                             *TINY], capsys)
    assert status == 0, err
    assert f"teacher {root / 'G.ts'}: TorchScript program, 3 -> 3 channels, any batch and size" in out
    assert "outputs only" not in out
    meta = torch.load(root / "sn" / "supernet.pt", weights_only=True)["meta"]
    assert meta["teacher"]["kind"] == "torchscript" and meta["teacher"]["arch"] is None
    assert meta["distilled_layers"] == ["model.9", "model.12"] and meta["losses"]["teacher_layers"] == ["down",
                                                                                                        "blocks.2"]

    status, out, err = _run(["supernet", "--workspace", str(root / "ws"), "register", str(root / "sn" / "supernet.pt"),
                             "--name", "program"], capsys)
    assert status == 0, err
    assert f"teacher: {root / 'G.ts'} (torchscript, 8.9M MACs, 69,443 params at 32x32)" in out
    _worker_runs_the_recorded_program(root)

    # fine-tuning takes the layers the supernet was distilled with; the same network as torch.export gives them
    status, out, err = _run(["train", "finetune", "--supernet", str(root / "sn" / "supernet.pt"), "--config",
                             "8_8_8_8_8_8_8_8", "--data", data, "--teacher", str(root / "G.pt2"), "--out",
                             str(root / "ft"), *TINY], capsys)
    assert status == 0, err
    assert f"teacher {root / 'G.pt2'}: torch.export program, 3 -> 3 channels" in out
    subnet = torch.load(root / "ft" / "subnet.pt", weights_only=True)["meta"]
    assert subnet["teacher"]["kind"] == "torch.export" and subnet["losses"]["teacher_layers"] == ["down", "blocks.2"]


def _worker_runs_the_recorded_program(root):
    """A search worker rebuilds the teacher from the store's record: the program, checked by kind and SHA-256."""
    from nas.store import Store
    from nas.teacher import TeacherInfo

    with Store(f"sqlite:///{root / 'ws' / 'ganas.db'}") as store:
        info = TeacherInfo.from_dict(store.get_supernet("program").teacher)
    assert (info.kind, info.architecture, info.reference_arch, info.key_map) == ("torchscript", "torchscript", None,
                                                                                 None)
    assert (info.macs, info.params, info.size) == (8896512, 69443, (32, 32))
    program = info.load((root / "G.ts").read_bytes())
    assert isinstance(program, ProgramGenerator)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(program(x), tiny_generator(seed=1)(x), atol=1e-5)


def test_an_onnx_teacher_is_distilled_by_its_outputs(setup, capsys):
    root, data = setup, str(setup / "data" / "labelled")
    status, out, err = _run([*SUPERNET, "--data", data, "--space", "channels-16", "--blocks", "3", "--teacher",
                             str(root / "G.onnx"), "--out", str(root / "sn-onnx"), *TINY], capsys)
    assert status == 0, err
    assert f"teacher {root / 'G.onnx'}: ONNX model, 3 -> 3 channels, any batch and size, no named layers" in out
    assert f"teacher {root / 'G.onnx'}: no layers to distil (--teacher-layers), so the run distils its outputs " \
           "only" in out
    meta = torch.load(root / "sn-onnx" / "supernet.pt", weights_only=True)["meta"]
    assert meta["teacher"]["kind"] == "onnx" and meta["distilled_layers"] == []


def test_a_program_teacher_needs_a_space_to_be_given(setup, capsys):
    err = _refused(setup, capsys, setup / "G.ts", space=None)
    assert "is a torchscript program, whose family and width ganas cannot read: give --space" in err


# -- refused: one message, exit status 2, nothing written ---------------------------------------------------------

def _refused(setup, capsys, teacher, *extra, command="supernet", space="channels-16"):
    out_dir = setup / f"refused-{teacher.name}-{command}"
    data = setup / "fresh" / "labelled"
    args = [*SUPERNET, "--blocks", "3", "--register", "--workspace", str(setup / "refused-ws")]
    args += ["--space", space] if space else []
    if command == "finetune":
        from supernet import create_generator, save_generator

        save_generator(create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=3), setup / "untrained.pt",
                       kind="supernet", space="channels-16")
        args = ["train", "finetune", "--supernet", str(setup / "untrained.pt"), "--config", "8_8_8_8_8_8_8_8"]
    status, out, err = _run([*args, "--data", str(data), "--teacher", str(teacher), *extra, "--out", str(out_dir),
                             *TINY], capsys)
    assert status == 2, out + err
    assert err.count("\n") == 1 and err.startswith("ganas train: error: ") and "Traceback" not in err
    assert not out_dir.exists() and not (data / SPLIT_FILE).exists()  # nothing written: no run, no split
    assert not (setup / "refused-ws").exists()  # no workspace, no store rows
    return err


def test_a_program_with_the_wrong_output_channels_is_refused(setup, capsys):
    path = save_program(tiny_generator(out_nc=1), "traced", setup / "gray.ts")
    err = _refused(setup, capsys, path)
    assert "gray.ts returns (1, 1, 32, 32) for an input of shape (1, 3, 32, 32), but the data's targets are " \
           "3-channel 32x32 images" in err
    assert "gray.ts returns (1, 1, 32, 32)" in _refused(setup, capsys, path, command="finetune")


def test_a_program_made_for_another_size_only_is_refused(setup, capsys):
    path = save_program(tiny_generator(), "pt2", setup / "fixed64.pt2", size=64, dynamic=False)
    err = _refused(setup, capsys, path)
    assert "fixed64.pt2 takes only 64x64 images (its torch.export program fixes its input at 1x3x64x64), not 32x32: " \
           "use --size 64" in err


def test_a_file_of_no_teacher_kind_is_refused(setup, capsys):
    (setup / "notes.txt").write_text("my generator was trained for 200 epochs\n")
    err = _refused(setup, capsys, setup / "notes.txt")
    assert "notes.txt is none of the teacher files ganas reads (TorchScript program" in err


def test_a_missing_layer_is_refused(setup, capsys):
    err = _refused(setup, capsys, setup / "G.ts", "--teacher-layers", "down,blocks.9")
    assert "G.ts has no layer named 'blocks.9' (--teacher-layers); its layers are named stem, stem.0" in err
    assert "no layer named 'blocks.9'" in _refused(setup, capsys, setup / "G.pt2", "--teacher-layers",
                                                   "down,blocks.9", command="finetune")


def test_layers_asked_of_an_onnx_teacher_are_refused(setup, capsys):
    err = _refused(setup, capsys, setup / "G.onnx", "--teacher-layers", "down,blocks.2")
    assert "G.onnx is an ONNX model, which gives no intermediate features" in err


def test_one_teacher_layer_per_student_layer(setup, capsys):
    err = _refused(setup, capsys, setup / "G.ts", "--teacher-layers", "down")
    assert "--teacher-layers names 1 layers but the student distils 2 (model.9, model.12)" in err


# -- teachers of other depths and widths: the student and its space follow ------------------------------------

DEPTHS = {  # teacher -> (hyper-parameters, image size, the space chosen, the student's depth)
    "resnet 6 blocks, ngf 32": ("resnet", dict(ngf=32, n_blocks=6), 32, "channels-32", {"n_blocks": 6}),
    "resnet 9 blocks, ngf 16": ("resnet", dict(ngf=16, n_blocks=9), 32, "channels-16", {"n_blocks": 9}),
    "unet 6 levels": ("unet", dict(ngf=16, num_downs=6), 64, "unet64-channels-32", {"num_downs": 6}),
}


@pytest.mark.parametrize("name", sorted(DEPTHS))
def test_the_supernet_takes_the_teachers_depth_and_a_space_that_fits_it(setup, capsys, tmp_path, name):
    from imagedata import MakeOptions, make_dataset
    from supernet import create_generator, get_space

    arch, hparams, size, space, depth = DEPTHS[name]
    make_dataset("labels2scene", tmp_path / "data", MakeOptions(size=size, count=4, val_count=1), progress=False)
    torch.manual_seed(0)
    torch.save(create_generator(arch, **hparams).state_dict(), tmp_path / "latest_net_G.pth")
    status, out, err = _run([*SUPERNET, "--data", str(tmp_path / "data" / "labelled"), "--teacher",
                             str(tmp_path / "latest_net_G.pth"), "--out", str(tmp_path / "sn"), *TINY, "--size",
                             str(size)], capsys)
    assert status == 0, err
    assert f"space: {space} (the {get_space(space).family} space for this teacher: ngf {hparams['ngf']}" in out
    record = torch.load(tmp_path / "sn" / "supernet.pt", weights_only=True)
    assert record["meta"]["space"] == space and {k: record["hparams"][k] for k in depth} == depth
    assert len(record["config"]) == get_space(space).num_positions
    assert record["hparams"]["ngf"] == get_space(space).ngf


def test_a_unet_space_of_another_depth_is_refused(setup, capsys, tmp_path):
    from supernet import create_generator

    torch.save(create_generator("unet", ngf=8, num_downs=5).state_dict(), tmp_path / "unet5.pth")
    err = _refused(setup, capsys, tmp_path / "unet5.pth", space="unet64-channels-32")
    assert "space unet64-channels-32 has 6 levels but the teacher U-Net has 5" in err


# -- search workers and finalize run the recorded program ---------------------------------------------------------

def test_a_search_and_finalize_measure_a_program_teacher(setup, capsys, tmp_path):
    from nas.finalize import FinalizeSettings, Finalizer, choose
    from nas.orchestrator import Orchestrator, OrchestratorSettings
    from nas.search_setup import create_search
    from nas.store import FinalStatus, Store
    from nas.workspace import Workspace
    from tests.nas.conftest import build_registered_supernet

    fixture = build_registered_supernet(tmp_path)  # a tiny supernet whose recorded teacher is a ganas checkpoint
    status, out, err = _run(["supernet", "--workspace", str(fixture.workspace), "register", str(fixture.checkpoint),
                             "--name", "by-program", "--teacher", str(setup / "G.ts")], capsys)
    assert status == 0, err
    ws = Workspace(fixture.workspace)
    with Store(ws.database_url) as store:
        search = create_search(store, "by-program", budgets=[80_000_000], metric="ssim", strategy="random", trials=2,
                               seed=0, batch_size=2)
        Orchestrator(store, ws, search.id, OrchestratorSettings(workers=1, executor="local", progress=False),
                     log=lambda m: None).run()
        assert 0 < store.get_search(search.id).teacher["metrics"]["ssim"] <= 1  # the program, scored by a worker
        settings = FinalizeSettings(steps=2, workers=1, executor="local", latency_runs=2, progress=False)
        (final,) = Finalizer(store, ws, search.id, settings, log=lambda m: None).run(choose(store, search.id)[:1])
    assert final.status == FinalStatus.DONE and set(final.teacher) == {"ssim"} and final.teacher_latency_ms > 0
