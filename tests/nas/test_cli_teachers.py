"""Teachers from other implementations through the CLI: train supernet, finetune, supernet register.

The teacher is issue 10's layout (affine InstanceNorm, blocks stored as ``model.N.block.K``), written from the
documented layer order in tests/supernet/reimplementations.py; bad teachers are refused with one message,
exit status 2 and nothing written.
"""
import json
import os

import pytest
import torch

from imagedata.splits import SPLIT_FILE
from tests.cli_run import run_cli as _run
from tests.supernet.reimplementations import EriklindernorenGenerator, Issue10Generator, randomise_

TINY = ["--steps", "1", "--size", "32", "--quiet", "--netd", "n_layers", "--n-layers-d", "1", "--ndf", "4"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from imagedata import MakeOptions, make_dataset

    from supernet import create_generator, save_generator

    root = tmp_path_factory.mktemp("teachers")
    for folder in ("data", "fresh"):  # "fresh" is only given to refused commands: it must never get a split
        make_dataset("labels2scene", root / folder, MakeOptions(size=32, count=6, val_count=2), progress=False)
    torch.save(randomise_(Issue10Generator(ngf=8, blocks=3)).state_dict(), root / "G.pth")
    save_generator(create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=3), root / "untrained.pt",
                   kind="supernet", space="channels-16")
    return root


def test_train_supernet_register_and_finetune_with_a_foreign_teacher(setup, capsys):
    root, data = setup, str(setup / "data" / "labelled")
    status, out, err = _run(["train", "supernet", "--method", "gan-compression", "--data", data, "--space",
                             "channels-16", "--teacher", str(root / "G.pth"), "--save-teacher-map",
                             str(root / "map.json"), "--out", str(root / "sn"), *TINY], capsys)
    assert status == 0, err
    assert (f"teacher {root / 'G.pth'}: loaded by structure as resnet (ngf 8, 3 blocks, norm instance_affine, "
            "conv bias yes, 3 -> 3 channels)") in out
    assert "  model.11.block.5.weight -> model.11.conv_block.5.weight" in out
    assert f"key mapping saved to {root / 'map.json'}" in out
    assert json.loads((root / "map.json").read_text())["mapping"]["model.10.block.2.bias"] == \
        "model.10.conv_block.2.bias"
    teacher = torch.load(root / "sn" / "supernet.pt", weights_only=True)["meta"]["teacher"]
    assert teacher["arch"] == "resnet" and teacher["hparams"]["norm"] == "instance_affine"
    assert teacher["key_map"]["model.12.block.1.weight"] == "model.12.conv_block.1.weight"

    status, out, err = _run(["supernet", "--workspace", str(root / "ws"), "register", str(root / "sn" / "supernet.pt"),
                             "--name", "foreign"], capsys)
    assert status == 0, err
    assert "(resnet, " in out and "  model.10.block.1.weight -> model.10.conv_block.1.weight" in out
    _worker_loads_the_recorded_teacher(root)

    status, out, err = _run(["train", "finetune", "--supernet", str(root / "sn" / "supernet.pt"), "--config",
                             "8_8_8_8_8_8_8_8", "--data", data, "--teacher", str(root / "G.pth"), "--teacher-map",
                             str(root / "map.json"), "--out", str(root / "ft"), *TINY], capsys)
    assert status == 0, err
    assert f"loaded by the mapping in {root / 'map.json'} as resnet" in out
    assert (root / "ft" / "subnet.pt").is_file()


def _worker_loads_the_recorded_teacher(root):
    """A search worker rebuilds the teacher from the store's record (architecture, hyper-parameters, key map)."""
    from nas.store import Store
    from nas.teacher import TeacherInfo
    from nas.workspace import Workspace
    from supernet import load_reference_generator

    with Store(f"sqlite:///{root / 'ws' / 'ganas.db'}") as store:
        info = TeacherInfo.from_dict(store.get_supernet("foreign").teacher)
    assert info.reference_arch == "resnet" and info.key_map["model.10.block.1.bias"] == "model.10.conv_block.1.bias"
    direct = load_reference_generator(root / "G.pth").state_dict()
    assert all(torch.equal(direct[k], v) for k, v in info.load(info.read_bytes(Workspace(root / 'ws'))).state_dict().items())


def _refused(setup, capsys, teacher, *extra, command="supernet"):
    out_dir = setup / f"refused-{teacher.stem}-{command}"
    data = setup / "fresh" / "labelled"
    args = ["train", "supernet", "--method", "gan-compression", "--space", "channels-16", "--register",
            "--workspace", str(setup / "refused-ws")] if command == "supernet" \
        else ["train", "finetune", "--supernet", str(setup / "untrained.pt"), "--config", "8_8_8_8_8_8_8_8"]
    status, out, err = _run([*args, "--data", str(data), "--teacher", str(teacher), *extra,
                             "--out", str(out_dir), *TINY], capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("ganas train: error: ") and "Traceback" not in err
    assert not out_dir.exists() and not (data / SPLIT_FILE).exists()  # nothing written: no run, no split
    assert not (setup / "refused-ws").exists()  # no workspace
    return err


def test_a_checkpoint_of_another_family_is_refused(setup, capsys):
    torch.save(randomise_(EriklindernorenGenerator(blocks=3)).state_dict(), setup / "upsample.pth")
    err = _refused(setup, capsys, setup / "upsample.pth")
    assert "model.14.weight (128, 256, 3, 3) does not fit: expected there model.13.weight (256, 128, 3, 3) (the " \
           "weight of a ConvTranspose2d)" in err


def test_a_mapping_file_that_does_not_fit_is_refused(setup, capsys):
    (setup / "bad-map.json").write_text(json.dumps({"mapping": {"model.1.weight": "model.1.weight"}}))
    err = _refused(setup, capsys, setup / "G.pth", "--teacher-map", str(setup / "bad-map.json"))
    assert "bad-map.json gives no ganas key for" in err and "model.1.bias" in err


def test_a_pickle_that_would_run_code_is_refused(setup, capsys):
    marker = setup / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"netG": {"model.1.weight": torch.zeros(1)}, "extra": Payload()}, setup / "evil.pth")
    err = _refused(setup, capsys, setup / "evil.pth")
    assert "holds pickled Python objects" in err and "never executes code" in err
    assert not marker.exists()
    err = _refused(setup, capsys, setup / "evil.pth", command="finetune")
    assert "evil.pth holds pickled Python objects" in err


def test_a_wrong_architecture_flag_is_answered_with_the_first_misfit(setup, capsys):
    err = _refused(setup, capsys, setup / "G.pth", "--teacher-arch", "resnet_9blocks")
    assert "does not fit a resnet_9blocks (ngf 8, 9 blocks" in err and "the checkpoint ends after" not in err
