"""``ganas evaluate`` and ``ganas train segmenter``: JSON equal to the library, one-line errors with exit 2."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evaluators.evaluate import EvaluationSettings, Evaluator
from evaluators.features import TorchScriptExtractor
from evaluators.metric_impls.segmentation import mean_iou
from evaluators.metrics import MetricOptions
from evaluators.segmenter import create_segmenter_network, load_segmenter
from nas.cli import main
from supernet import save_generator

from .evaluation_helpers import (SUBNET, ScriptablePool, made_data, one_torch_thread, open_split,  # noqa: F401
                                 save_torchscript, tiny_supernet)

pytestmark = pytest.mark.filterwarnings("ignore::evaluators.frechet.RankDeficientCovarianceWarning")  # tiny test sets

CONFIG = "_".join(map(str, SUBNET))


@pytest.fixture(scope="module")
def files(made_data, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    return {"checkpoint": save_generator(tiny_supernet(), folder / "supernet.pt"),
            "extractor": save_torchscript(ScriptablePool(), folder / "pool.pt"), **made_data}


def run_json(capsys, *argv) -> dict:
    assert main([str(a) for a in argv]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1
    return json.loads(out)


def run_error(capsys, *argv) -> str:
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ganas {argv[0]}: error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def evaluate_args(files, data: Path, *extra) -> list:
    return ["evaluate", "--checkpoint", files["checkpoint"], "--config", CONFIG, "--data", data,
            "--extractor", files["extractor"], "--quiet", *extra]


def test_train_segmenter_then_evaluate_every_metric(files, tmp_path, capsys):
    segmenter_path = tmp_path / "seg.pt"
    trained = run_json(capsys, "train", "segmenter", "--data", files["labelled"], "--out", segmenter_path,
                       "--steps", 6, "--size", 32, "--batch-size", 3, "--width", 4, "--json", "--quiet")
    assert trained["steps"] == 6 and trained["num_classes"] == 8 and 0 < trained["val_miou"] <= 1
    record = torch.load(segmenter_path, weights_only=True)
    assert record["val_miou"] == trained["val_miou"] and record["dataset"]["hash"] == trained["dataset_hash"]
    val = open_split(files["labelled"])
    batches = ((val[i]["B"][None], val[i]["label"][None]) for i in range(len(val)))
    assert mean_iou(load_segmenter(segmenter_path), batches, 8, 255) == pytest.approx(trained["val_miou"], abs=1e-7)

    args = evaluate_args(files, files["labelled"], "--metrics", "fid,kid,miou,psnr,ssim", "--segmenter",
                         segmenter_path, "--kid-subset-size", 3, "--kid-subsets", 4, "--cache", tmp_path / "cache",
                         "--batch-size", 2, "--json")
    first = run_json(capsys, *args)
    assert first["reference_cache_hit"] is False and first["config_str"] == CONFIG and first["num_images"] == 5
    assert first["identities"]["fid"].startswith("torchscript:") and first["identities"]["fid"].endswith(":pool.pt")
    assert first["identities"]["miou"].startswith("segmenter:")
    library = Evaluator(open_split(files["labelled"]), "fid,kid,miou,psnr,ssim", EvaluationSettings(
        batch_size=2, extractor=TorchScriptExtractor(files["extractor"]), segmenter=str(segmenter_path),
        options=MetricOptions(kid_subsets=4, kid_subset_size=3))).evaluate(tiny_supernet(), SUBNET)
    assert first["metrics"] == pytest.approx(library.metrics, rel=1e-9)
    second = run_json(capsys, *args)
    assert second["reference_cache_hit"] is True and second["metrics"] == first["metrics"]


def test_human_output_and_sample_grid(files, tmp_path, capsys):
    grid = tmp_path / "grid.png"
    assert main([str(a) for a in evaluate_args(files, files["aligned"], "--metrics", "fid,psnr", "--no-cache",
                                               "--grid", grid)]) == 0
    out = capsys.readouterr().out
    assert "mobile_resnet supernet at 4_4_8_4_8_4_8_4" in out and "5 images at 32x32" in out
    assert any(line.split()[0] == "psnr" for line in out.splitlines() if line.strip())
    assert "real statistics cache: off" in out
    assert np.asarray(Image.open(grid)).shape == (4 * 32, 3 * 32, 3)


def test_missing_inception_weights_name_the_file(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GANAS_INCEPTION_WEIGHTS", raising=False)
    line = run_error(capsys, "evaluate", "--checkpoint", files["checkpoint"], "--data", files["aligned"], "--no-cache",
                     "--quiet")
    assert "FID Inception-v3 weights file weights-inception-2015-12-05-6726825d.pth or pt_inception" in line
    assert "--inception-weights PATH" in line and str(tmp_path / "torch") in line


def test_bad_requests_are_one_line_errors(files, tmp_path, capsys):
    no_cache = ("--no-cache",)
    assert "miou needs label maps" in run_error(capsys, *evaluate_args(files, files["aligned"], "--metrics", "miou",
                                                                      *no_cache))
    assert "unknown metric 'lpips'" in run_error(capsys, *evaluate_args(files, files["aligned"], "--metrics",
                                                                       "fid,lpips", *no_cache))
    assert "KID needs at least subset_size=1000 images" in run_error(
        capsys, *evaluate_args(files, files["aligned"], "--metrics", "kid", *no_cache))
    five = save_torchscript(create_segmenter_network("dilated_fcn", 5, width=4).eval(), tmp_path / "five.ts",
                            torch.zeros(1, 3, 16, 16))
    assert "predicts 5 classes" in run_error(capsys, *evaluate_args(files, files["labelled"], "--metrics", "miou",
                                                                   "--segmenter", five, *no_cache))
    assert "does not exist" in run_error(capsys, "evaluate", "--checkpoint", tmp_path / "none.pt", "--data",
                                         files["aligned"])
    assert "position 0" in run_error(capsys, *evaluate_args(files, files["aligned"], "--no-cache", "--config",
                                                           "99_4_8_4_8_4_8_4"))  # the last --config wins


def test_too_few_images_and_mixed_sizes(files, tmp_path, capsys):
    single = Path(shutil.copytree(files["labelled"], tmp_path / "single"))
    for path in sorted((single / "val" / "images").iterdir())[1:]:
        path.unlink()
        (single / "val" / "labels" / path.name).unlink()
    assert "FID needs at least 2 input images" in run_error(capsys, *evaluate_args(files, single, "--no-cache"))
    mixed = Path(shutil.copytree(files["labelled"], tmp_path / "mixed"))
    for folder in ("images", "labels"):
        path = sorted((mixed / "val" / folder).iterdir())[2]
        Image.open(path).resize((24, 24), Image.Resampling.NEAREST).save(path)
    assert "is 24x24 but the evaluation size is 32x32" in run_error(capsys, *evaluate_args(files, mixed, "--no-cache"))
    assert main([str(a) for a in evaluate_args(files, mixed, "--no-cache", "--size", "32")]) == 0  # resized: fine


def test_train_segmenter_needs_a_labelled_dataset(files, tmp_path, capsys):
    line = run_error(capsys, "train", "segmenter", "--data", files["aligned"], "--out", tmp_path / "s.pt",
                     "--steps", 1, "--quiet")
    assert "labelled dataset" in line and not (tmp_path / "s.pt").exists()
