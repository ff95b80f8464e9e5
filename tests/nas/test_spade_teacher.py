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
