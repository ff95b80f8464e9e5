"""An NVlabs/SPADE checkpoint as the teacher of a registered mobile SPADE supernet: recorded with its MACs,
or refused with one line and exit status 2 when its options are not the supernet's."""
import re

import pytest
import torch

from supernet import create_generator, save_generator
from tests.cli_run import run_cli
from tests.supernet.spade_reference import nvlabs_state_dict

LABELS = 5  # 4 classes + the instance edge channel


@pytest.fixture()
def files(tmp_path):
    supernet = create_generator("mobile_spade", elastic=True, input_nc=LABELS, ngf=8)
    save_generator(supernet, tmp_path / "supernet.pt", kind="supernet", space="spade-channels-48",
                   dataset={"size": 64})
    torch.save(nvlabs_state_dict(LABELS, 2, nhidden=8), tmp_path / "latest_net_G.pth")
    torch.save(nvlabs_state_dict(LABELS + 4, 2, nhidden=8), tmp_path / "other_labels.pth")
    return tmp_path


def _register(files, teacher, *extra):
    return ["supernet", "--workspace", str(files / "ws"), "register", str(files / "supernet.pt"), "--name", "gaugan",
            "--teacher", str(files / teacher), "--teacher-arch", "spade", *extra]


def test_an_nvlabs_teacher_registers_with_its_macs(files, capsys):
    status, out, err = run_cli(_register(files, "latest_net_G.pth"), capsys)
    assert status == 0, err
    assert "teacher: " in out and "(spade, " in out and "at 64x64" in out


@pytest.mark.parametrize("teacher, extra, message", [
    ("other_labels.pth", (), "takes 9 input channels \\(a one-hot label map: .*--label-nc.*; the supernet 5"),
    ("latest_net_G.pth", ("--teacher-ngf", "4"), "has ngf 2 \\(fc outputs 16 x ngf\\), not 4"),
])
def test_a_teacher_of_other_options_is_refused_in_one_line(files, capsys, teacher, extra, message):
    status, out, err = run_cli(_register(files, teacher, *extra), capsys)
    assert status == 2 and out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganas supernet: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert not (files / "ws" / "ganas.db").exists() or "gaugan" not in run_cli(
        ["supernet", "--workspace", str(files / "ws"), "list"], capsys)[1]  # nothing registered


def test_a_label_map_supernet_is_refused_at_search_start_in_one_line(files, capsys):
    assert run_cli(_register(files, "latest_net_G.pth"), capsys)[0] == 0
    status, out, err = run_cli(["search", "--workspace", str(files / "ws"), "start", "--supernet", "gaugan",
                                "--budget", "1G", "--metric", "teacher-ssim", "--trials", "2"], capsys)
    assert status == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "takes one-hot label maps of 5 channels" in err and "not searched on data yet" in err


def test_label_map_generators_on_image_data_are_refused_with_one_error(tmp_path):
    """Evaluating, sampling or distilling from SPADE on a dataset of images: one InputChannelsError, not a conv's."""
    from distill.jobs import check_teacher
    from evaluators.evaluate import EvaluationSettings, Evaluator, sample_grid, teacher_identity
    from imagedata import MakeOptions, Preprocess, create_dataset, make_dataset
    from supernet import InputChannelsError

    make_dataset("labels2scene", tmp_path / "data", MakeOptions(size=32, count=2, val_count=1), progress=False)
    split = create_dataset(tmp_path / "data" / "labelled", None, "val", preprocess=Preprocess.for_size(32),
                           train=False)
    spade = create_generator("mobile_spade", input_nc=LABELS, ngf=2, nhidden=8)
    image = create_generator("resnet", ngf=4, n_blocks=1)
    wanted = "mobile_spade takes a one-hot label map of 5 channels.*gives 3-channel images"
    with pytest.raises(InputChannelsError, match=wanted):
        Evaluator(split, "psnr").evaluate(spade)
    with pytest.raises(InputChannelsError, match=wanted):
        sample_grid(spade, split, n=1)
    with pytest.raises(InputChannelsError, match=wanted):
        Evaluator(split, "teacher-psnr", EvaluationSettings(teacher=spade, teacher_identity=teacher_identity(
            "t.pt", "0" * 64)))
    with pytest.raises(InputChannelsError, match=wanted):
        check_teacher(spade, split[0]["A"].unsqueeze(0), split[0]["B"], "latest_net_G.pth")
    assert set(Evaluator(split, "psnr").evaluate(image).metrics) == {"psnr"}  # images in: as before
