"""``ganas train teacher`` at a size the architecture cannot take: one line, exit 2, nothing written."""
import pytest

from imagedata import MakeOptions, make_dataset
from tests.cli_run import run_cli


@pytest.mark.parametrize("arch, extra, size, message", [
    ("unet", ("--blocks", "8"), "64", "64x64 is not a multiple of 256, the downsampling factor of unet"),
    ("resnet", ("--blocks", "1"), "30", "30x30 is not a multiple of 4, the downsampling factor of resnet"),
])
def test_a_size_the_teacher_cannot_take_is_refused_before_training(tmp_path, capsys, arch, extra, size, message):
    make_dataset("labels2scene", tmp_path / "data", MakeOptions(size=32, count=2, val_count=1), progress=False)
    status, out, err = run_cli(["train", "teacher", "--arch", arch, "--ngf", "4", *extra, "--data",
                                str(tmp_path / "data" / "aligned"), "--size", size, "--steps", "1", "--out",
                                str(tmp_path / "out"), "--quiet"], capsys)
    assert status == 2 and "Traceback" not in err and message in err, err
    assert not (tmp_path / "out").exists()


def test_an_omgd_student_of_another_size_is_refused_before_the_split_is_written(tmp_path, capsys):
    make_dataset("labels2scene", tmp_path / "data", MakeOptions(size=32, count=2, val_count=1), progress=False)
    data = tmp_path / "data" / "aligned"
    status, out, err = run_cli(["train", "supernet", "--method", "omgd", "--space", "unet64-channels-32",
                                "--perceptual", "none", "--data", str(data), "--size", "32", "--steps", "1", "--out",
                                str(tmp_path / "out"), "--quiet"], capsys)
    assert status == 2 and "Traceback" not in err, err
    assert "32x32 is not a multiple of 64, the downsampling factor of unet" in err
    assert not (tmp_path / "out").exists() and not (data / "split.json").exists()


def test_omgd_does_not_overwrite_another_runs_teacher_in_its_out_folder(tmp_path, capsys):
    """OMGD writes OUT/teacher.pt: a pix2pix teacher already there (one a supernet may record) is refused, kept."""
    from supernet import create_generator, save_generator

    make_dataset("labels2scene", tmp_path / "data", MakeOptions(size=32, count=2, val_count=1), progress=False)
    teacher = save_generator(create_generator("resnet", ngf=4, n_blocks=1), tmp_path / "out" / "teacher.pt",
                             kind="teacher", method="pix2pix")
    before = teacher.read_bytes()
    status, out, err = run_cli(["train", "supernet", "--method", "omgd", "--space", "channels-16", "--perceptual",
                                "none", "--data", str(tmp_path / "data" / "aligned"), "--size", "32", "--steps", "1",
                                "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert status == 2 and "Traceback" not in err and "is not an OMGD run's online teacher" in err, err
    assert teacher.read_bytes() == before and not (tmp_path / "data" / "aligned" / "split.json").exists()


def test_deep_teachers_only_with_channel_distillation_are_refused_before_the_split(tmp_path, capsys):
    make_dataset("labels2scene", tmp_path / "data", MakeOptions(size=32, count=2, val_count=1), progress=False)
    data = tmp_path / "data" / "aligned"
    status, out, err = run_cli(["train", "supernet", "--method", "omgd", "--space", "channels-16", "--teachers", "deep",
                                "--perceptual", "none", "--data", str(data), "--size", "32", "--steps", "1", "--out",
                                str(tmp_path / "out"), "--quiet"], capsys)
    assert status == 2 and "Traceback" not in err and "add --lambda-cd 0 (outputs only)" in err, err
    assert not (tmp_path / "out").exists() and not (data / "split.json").exists()
