"""``ganas macs`` and ``ganas space``: the contract other tools rely on, and one-line errors."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evaluators.closed_form import closed_form_count, space_count, space_hparams
from nas.cli import main
from supernet import get_space, list_spaces

ROOT = Path(__file__).resolve().parents[2]


def _json(capsys, *argv) -> dict:
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1  # exactly one JSON object
    return json.loads(out)


def _error(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ganas {argv[0]}: error: ")
    assert "Traceback" not in captured.err
    return lines[0]


# -- ganas macs ------------------------------------------------------------------------------------------------

def test_macs_json_reference_generator(capsys):
    data = _json(capsys, "macs", "--arch", "resnet", "--json")
    assert data["macs"] == 56_799_264_768 and data["params"] == 11_378_179
    assert isinstance(data["macs"], int) and isinstance(data["params"], int)
    assert data["macs_g"] == 56.7993 and data["size"] == [256, 256] and data["config"] == "_".join(["64"] * 8)


def test_macs_human_output_is_a_table_with_exact_figures(capsys):
    assert main(["macs", "--arch", "resnet"]) == 0
    out = capsys.readouterr().out
    assert "56.80G (56,799,264,768)" in out
    assert "11.38M (11,378,179)" in out
    assert any(line.split()[:2] == ["size", "256x256"] for line in out.splitlines())


def test_macs_config_with_space_and_non_square_size(capsys):
    data = _json(capsys, "macs", "--arch", "mobile_resnet", "--space", "channels-64-cycleGAN",
                 "--config", "16_16_24_16_32_64_16_24", "--size", "512x256", "--json")
    expected = closed_form_count("mobile_resnet", (16, 16, 24, 16, 32, 64, 16, 24), (512, 256))
    assert (data["macs"], data["params"]) == (expected.macs, expected.params)
    assert data["size"] == [512, 256] and data["space"] == "channels-64-cycleGAN"
    assert data["macs"] == 2 * 2_618_425_344  # twice the 256x256 area


def test_macs_blocks_sets_depth_per_family(capsys):
    resnet = _json(capsys, "macs", "--arch", "resnet", "--blocks", "6", "--ngf", "32", "--json")
    assert resnet["macs"] == closed_form_count("resnet", n_blocks=6, ngf=32).macs
    assert resnet["hparams"]["n_blocks"] == 6
    unet = _json(capsys, "macs", "--arch", "unet", "--blocks", "6", "--size", "64", "--json")
    assert unet["macs"] == closed_form_count("unet", size=64, num_downs=6).macs
    assert unet["hparams"]["num_downs"] == 6


def test_macs_space_sets_ngf_and_unet_depth(capsys):
    data = _json(capsys, "macs", "--arch", "unet", "--space", "unet64-channels-32", "--config", "8_16_8_24_32_8",
                 "--size", "64", "--json")
    space = get_space("unet64-channels-32")
    assert data["macs"] == space_count(space, (8, 16, 8, 24, 32, 8), 64).macs
    assert data["hparams"]["ngf"] == 32 and data["hparams"]["num_downs"] == 6


def test_macs_trace_gives_the_closed_form_figures(capsys):
    argv = ["macs", "--arch", "resnet", "--ngf", "16", "--blocks", "3", "--config", "8_16_4_12_16_8_4_12",
            "--size", "32x48", "--json"]
    closed = _json(capsys, *argv)
    traced = _json(capsys, *argv, "--trace")
    assert traced["method"] == "trace" and closed["method"] == "closed-form"
    assert (traced["macs"], traced["params"]) == (closed["macs"], closed["params"])


@pytest.mark.parametrize("argv, message", [
    (["--arch", "vgg"], "unknown architecture 'vgg'"),
    (["--arch", "resnet", "--space", "nope"], "unknown search space 'nope'"),
    (["--arch", "resnet", "--size", "250"], "not a multiple of 4"),
    (["--arch", "unet", "--size", "128x256"], "not a multiple of 256"),
    (["--arch", "resnet", "--config", "16_16_x"], "not channel numbers joined by '_'"),
    (["--arch", "resnet", "--config", "16_16"], "has 2 positions"),
    (["--arch", "resnet", "--config", "16_16_16_16_16_16_16_128"], "position 7 is 128"),
    (["--arch", "resnet", "--config", "16_16_16_16_16_16_16_-4"], "non-positive"),
    (["--arch", "resnet", "--space", "channels-64-cycleGAN", "--config", "16_16_16_16_16_16_16_20"],
     "position 7 (up2) is 20"),
    (["--arch", "resnet", "--space", "channels-64-cycleGAN", "--config", "16_16_16"], "has 3 positions"),
    (["--arch", "unet", "--space", "channels-16"], "is for the resnet family"),
    (["--arch", "unet_128", "--space", "unet256-channels-64"], "has 8 positions"),
    (["--arch", "unet", "--blocks", "4"], "num_downs >= 5"),
    (["--arch", "resnet", "--blocks", "-1"], "n_blocks must be an integer >= 0"),
    (["--arch", "resnet", "--ngf", "0"], "ngf must be a positive integer"),
])
def test_macs_errors_are_one_line_and_exit_2(capsys, argv, message):
    assert message in _error(capsys, "macs", *argv)


def test_macs_spade_flags_give_the_published_gaugan_figures(capsys):
    city = _json(capsys, "macs", "--arch", "spade", "--label-nc", "35", "--num-upsampling-layers", "more",
                 "--size", "256x512", "--json")
    assert (round(city["macs"] / 1e9), round(city["params"] / 1e6, 1)) == (281, 93.0)
    assert city["hparams"]["input_nc"] == 36 and city["config"] == "_".join(["64"] * 8)
    coco = _json(capsys, "macs", "--arch", "spade", "--label-nc", "182", "--contain-dontcare", "--json")
    assert coco["hparams"]["input_nc"] == 184 and (round(coco["macs"] / 1e9), round(coco["params"] / 1e6, 1)) == \
        (191, 97.5)
    subnet = _json(capsys, "macs", "--arch", "mobile_spade", "--space", "spade-channels-48", "--config",
                   "32_32_48_32_32_32_32_24", "--label-nc", "35", "--num-upsampling-layers", "more",
                   "--size", "256x512", "--json")
    assert subnet["hparams"]["ngf"] == 48 and round(subnet["params"] / 1e6, 1) == 20.4
    no_instance = _json(capsys, "macs", "--arch", "spade", "--label-nc", "35", "--no-instance", "--json")
    assert no_instance["hparams"]["input_nc"] == 35
    most = _json(capsys, "macs", "--arch", "spade", "--num-upsampling-layers", "most", "--json")
    assert most["config"] == "_".join(["64"] * 8 + ["32"])  # up_4 outputs ngf // 2, as NVlabs's


@pytest.mark.parametrize("argv, message", [
    (["--arch", "resnet", "--label-nc", "3"], "apply to label-map generators \\(spade, mobile_spade\\), not to resnet"),
    (["--arch", "spade", "--no-instance"], "give --label-nc N"),
    (["--arch", "spade", "--label-nc", "0"], "give --label-nc N"),
    (["--arch", "mobile_spade", "--space", "spade-channels-48", "--config", "32_32_48_32_32_32_32"],
     "has 7 positions; space spade-channels-48 has 8 \\(fc, head_0"),
    (["--arch", "mobile_spade", "--space", "spade-channels-48", "--config", "32_32_48_32_32_32_32_16"],
     "position 7 \\(up_3\\) is 16"),
    (["--arch", "spade", "--num-upsampling-layers", "more", "--size", "256x480"], "not a multiple of 64"),
])
def test_macs_spade_errors_are_one_line_and_exit_2(capsys, argv, message):
    assert re.search(message, _error(capsys, "macs", *argv))


@pytest.mark.parametrize("argv", [["--arch", "resnet", "--size", "0"], ["--arch", "resnet", "--size", "axb"],
                                  ["--arch", "resnet", "--ngf", "wide"], ["--size", "256"]])
def test_macs_flag_values_argparse_rejects_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(["macs", *argv])
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_macs_json_in_a_real_process():
    result = subprocess.run([sys.executable, "-m", "nas.cli", "macs", "--arch", "unet", "--config",
                             "16_16_16_16_16_16_16_16", "--json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["macs"] == closed_form_count("unet", (16,) * 8).macs
    assert data["params"] == closed_form_count("unet", (16,) * 8).params


# -- ganas space -------------------------------------------------------------------------------------------------

def test_space_list_names_every_space(capsys):
    assert main(["space", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["NAME", "FAMILY", "POSITIONS", "SUBNETS"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert sorted(rows) == list_spaces()
    assert rows["channels-64-cycleGAN"][1:4] == ["resnet", "8", "390,625"]
    data = _json(capsys, "space", "list", "--json")
    assert [s["name"] for s in data["spaces"]] == list_spaces()
    assert {s["name"]: s["size"] for s in data["spaces"]}["channels-64-pix2pix"] == 7 ** 8


def test_space_show_json(capsys):
    data = _json(capsys, "space", "show", "channels-64-cycleGAN", "--json")
    assert data["subnets"] == 5 ** 8 and data["architecture"] == "mobile_resnet"
    assert [p["name"] for p in data["positions"]][:3] == ["stem", "down1", "trunk"]
    assert data["positions"][0]["choices"] == [64, 48, 32, 24, 16]
    assert data["smallest"] == {"config": "16_16_16_16_16_16_16_16", "macs": 1_407_713_280, "params": 137_347}
    space = get_space("channels-64-cycleGAN")
    largest = space_count(space, space.largest(), 256)
    assert (data["largest"]["macs"], data["largest"]["params"]) == (largest.macs, largest.params)


def test_space_show_table_at_a_size(capsys):
    assert main(["space", "show", "unet64-channels-32", "--size", "64x128"]) == 0
    out = capsys.readouterr().out
    space = get_space("unet64-channels-32")
    smallest = space_count(space, space.smallest(), (64, 128), **space_hparams(space))
    assert f"({smallest.macs:,})" in out
    assert "AT 64x128" in out and "4,096" in out


@pytest.mark.parametrize("argv, message", [(["show", "nope"], "unknown search space 'nope'"),
                                           (["show", "unet256-channels-64", "--size", "128"], "not a multiple of 256")])
def test_space_errors_are_one_line_and_exit_2(capsys, argv, message):
    assert message in _error(capsys, "space", *argv)
