"""``ganas train supernet --method omgd``: unaligned data, a registered supernet with its online teacher; bad input."""
import shutil

import pytest
import torch

from nas.store import Store
from nas.workspace import Workspace
from supernet.checkpoint import read_checkpoint

from ..cli_run import run_cli

TINY = ["--perceptual", "none", "--steps", "3", "--teacher-phase", "1", "--n-dis", "2", "--size", "32", "--quiet",
        "--ndf", "8", "--threads", "1"]


@pytest.fixture(scope="module")
def unaligned(tmp_path_factory):
    from imagedata import MakeOptions, make_dataset

    made = make_dataset("photo2texture", tmp_path_factory.mktemp("p2t") / "p2t",
                        MakeOptions(size=32, count=6, val_count=2), progress=False)
    return made.layouts["unaligned"]


def test_unpaired_omgd_supernet_is_registered_with_its_online_teacher(unaligned, tmp_path, capsys):
    data = shutil.copytree(unaligned, tmp_path / "data")
    ws = tmp_path / "ws"
    status, out, err = run_cli(["train", "supernet", "--method", "omgd", "--data", str(data), "--space", "channels-16",
                                "--blocks", "3", "--out", str(tmp_path / "run"), "--register", "--name", "u",
                                "--workspace", str(ws), *TINY], capsys)
    assert status == 0, err
    for name in ("supernet.pt", "teacher.pt", "teacher_BA.pt"):
        assert (tmp_path / "run" / name).is_file()
    meta = read_checkpoint(tmp_path / "run" / "supernet.pt")["meta"]
    assert meta["task"] == "unpaired" and meta["dataset"]["paired"] is False
    assert meta["losses"]["teachers"] == "wide" and meta["losses"]["n_dis"] == 2  # OMGD's CycleGAN recipe
    teacher = read_checkpoint(tmp_path / "run" / "teacher.pt")
    assert teacher["arch"] == "mobile_resnet" and teacher["hparams"]["ngf"] == 64  # the wide teacher, ngf x eta 4
    with Store(Workspace(ws).database_url) as store:
        record = store.get_supernet("u")
    assert record.teacher is not None and record.teacher["path"].endswith("teacher.pt")
    assert "teacher-ssim" in record.metrics and "ssim" not in record.metrics  # no ground truth, a teacher


def test_unpaired_omgd_static_student(unaligned, tmp_path, capsys):
    data = shutil.copytree(unaligned, tmp_path / "data")
    status, out, err = run_cli(["train", "supernet", "--method", "omgd", "--data", str(data), "--student-ngf", "4",
                                "--blocks", "1", "--teachers", "both", "--out", str(tmp_path / "run"), *TINY], capsys)
    assert status == 0, err
    student = read_checkpoint(tmp_path / "run" / "subnet.pt")
    assert student["meta"]["kind"] == "subnet" and student["meta"]["losses"]["teachers"] == "both"
    assert torch.isfinite(torch.cat([v.flatten().float() for v in student["state_dict"].values()])).all()


def test_an_unpaired_dataset_with_an_empty_side_is_refused(unaligned, tmp_path, capsys):
    data = shutil.copytree(unaligned, tmp_path / "data")
    for image in (data / "trainB").iterdir():
        image.unlink()
    for layout in ([], ["--layout", "unaligned"]):
        status, out, err = run_cli(["train", "supernet", "--method", "omgd", "--data", str(data), "--space",
                                    "channels-16", "--out", str(tmp_path / "run"), "--register", "--workspace",
                                    str(tmp_path / "ws"), *layout, *TINY], capsys)
        assert status == 2 and "trainB" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists() and not (data / "split.json").exists()
    assert not (tmp_path / "ws").exists()  # not even the workspace of --register


def test_deep_teachers_for_an_architecture_without_one_exit_2(unaligned, tmp_path, capsys, monkeypatch):
    from distill import omgd

    monkeypatch.delitem(omgd.DEEP_TEACHERS, "resnet")  # as a family registered without a deep teacher
    data = shutil.copytree(unaligned, tmp_path / "data")
    status, out, err = run_cli(["train", "supernet", "--method", "omgd", "--data", str(data), "--space", "channels-16",
                                "--teachers", "deep", "--out", str(tmp_path / "run"), "--register", "--workspace",
                                str(tmp_path / "ws"), *TINY], capsys)
    assert status == 2 and "no deep teacher architecture for a mobile_resnet student; use --teachers wide" in err
    assert not (tmp_path / "run").exists() and not (data / "split.json").exists() and not (tmp_path / "ws").exists()


def test_paired_omgd_records_its_online_wide_teacher_too(tmp_path, capsys):
    from imagedata import MakeOptions, make_dataset

    made = make_dataset("labels2scene", tmp_path / "scene", MakeOptions(size=32, count=4, val_count=1), progress=False)
    ws = tmp_path / "ws"
    status, out, err = run_cli(["train", "supernet", "--method", "omgd", "--data", str(made.layouts["aligned"]),
                                "--space", "channels-16", "--blocks", "3", "--teachers", "wide", "--out",
                                str(tmp_path / "run"), "--register", "--name", "p", "--workspace", str(ws), *TINY],
                               capsys)
    assert status == 0, err
    assert not (tmp_path / "run" / "teacher_BA.pt").exists()
    with Store(Workspace(ws).database_url) as store:
        record = store.get_supernet("p")
    assert record.teacher["architecture"] == "mobile_resnet" and record.teacher["hparams"]["ngf"] == 64
    assert {"ssim", "teacher-ssim"} <= set(record.metrics)
