"""Every bad input is one DatasetError naming the file and what is wrong; nothing is skipped silently."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from foundation.errors import GanasError
from imagedata import (AlignedDataset, DatasetError, LabelledDataset, Preprocess, UnalignedDataset, create_dataset,
                       detect_layout, get_layout)

from .conftest import random_rgb, save, write_aligned, write_labelled, write_unaligned


def test_dataset_error_is_a_ganas_error():
    assert issubclass(DatasetError, GanasError) and DatasetError.exit_code == 2


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset folder .*nowhere does not exist"):
        AlignedDataset(tmp_path / "nowhere")


def test_missing_split_names_the_folder_and_the_splits_present(tmp_path):
    root = tmp_path / "un"
    write_unaligned(root, "train")
    write_unaligned(root, "test")
    with pytest.raises(DatasetError, match=r"no valA/ folder for split 'val' \(splits present: train, test\)"):
        UnalignedDataset(root, "val")


def test_empty_split(tmp_path):
    (tmp_path / "ds" / "train").mkdir(parents=True)
    (tmp_path / "ds" / "train" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetError, match=r"ds/train holds no images .*split 'train' is empty"):
        AlignedDataset(tmp_path / "ds")


def test_unreadable_image_fails_on_load_and_in_validate(tmp_path):
    root = tmp_path / "ds"
    write_aligned(root, "train", count=3)
    (root / "train" / "001.png").write_bytes(b"this is not a png")
    dataset = AlignedDataset(root)  # content is checked lazily: construction succeeds
    assert dataset[0]["A"].shape[0] == 3
    with pytest.raises(DatasetError, match=r"train/001\.png: cannot read image"):
        dataset[1]
    with pytest.raises(DatasetError, match=r"(?s)1 problem\(s\).*train/001\.png: cannot read image"):
        dataset.validate(progress=False)


def test_truncated_image(tmp_path):
    root = tmp_path / "ds"
    write_aligned(root, "train", count=2, size=32)
    path = root / "train" / "000.png"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"train/000\.png: cannot read image .*truncated"):
        AlignedDataset(root)[0]


def test_odd_width_pair(tmp_path):
    root = tmp_path / "ds"
    write_aligned(root, "train", count=2)
    save(root / "train" / "odd.png", random_rgb(np.random.default_rng(0), 16, 33))
    dataset = AlignedDataset(root)
    with pytest.raises(DatasetError, match=r"odd\.png: an aligned A\|B image must have an even width .* 33x16"):
        dataset.validate(progress=False)


def test_label_values_outside_the_declared_classes(tmp_path):
    root = tmp_path / "lab"
    labels = write_labelled(root, "train", count=3)
    labels[2][5, 5] = 7
    save(root / "train" / "labels" / "s002.png", labels[2])
    dataset = LabelledDataset(root)
    with pytest.raises(DatasetError, match=r"s002\.png: label map has class values 7 outside .* 0\.\.2 or 255"):
        dataset[2]


def test_rgb_label_map_and_size_mismatch(tmp_path):
    root = tmp_path / "lab"
    write_labelled(root, "train", count=2)
    save(root / "train" / "labels" / "s000.png", random_rgb(np.random.default_rng(0), 16, 16))
    save(root / "train" / "images" / "s001.png", random_rgb(np.random.default_rng(0), 16, 20))
    dataset = LabelledDataset(root)
    with pytest.raises(DatasetError, match=r"s000\.png: a label map must be a single-channel PNG .* this one is RGB"):
        dataset[0]
    with pytest.raises(DatasetError, match=r"s001\.png: label map is 16x16 but its image s001\.png is 20x16"):
        dataset[1]
    with pytest.raises(DatasetError, match=r"2 problem\(s\)"):
        dataset.validate(progress=False)


def test_mismatched_stems_fail_at_construction(tmp_path):
    root = tmp_path / "lab"
    write_labelled(root, "train", count=3)
    (root / "train" / "labels" / "s001.png").rename(root / "train" / "labels" / "t001.png")
    with pytest.raises(DatasetError, match=r"images/s001\.png has no label map train/labels/s001\.png"):
        LabelledDataset(root)


@pytest.mark.parametrize("spec, message", [
    ({"classes": []}, "'classes' must be a positive count or a list"),
    ({"classes": ["a", "a"]}, "'classes' must be .*distinct class names"),
    ({"classes": ["a", "b"], "ignore_index": 1}, "'ignore_index' must be null or an integer in 2..65535"),
    ({"classes": ["a", "b"], "colors": [[0, 0, 0]]}, "'colors' must list one"),
])
def test_bad_dataset_json(tmp_path, spec, message):
    root = tmp_path / "lab"
    write_labelled(root, "train", count=1, spec=spec)
    with pytest.raises(DatasetError, match=r"dataset\.json: " + message):
        LabelledDataset(root)


def test_missing_dataset_json(tmp_path):
    root = tmp_path / "lab"
    write_labelled(root, "train", count=1)
    (root / "dataset.json").unlink()
    with pytest.raises(DatasetError, match=r"dataset\.json not found: a labelled dataset declares its classes"):
        LabelledDataset(root)


def test_image_smaller_than_the_crop(tmp_path):
    root = tmp_path / "ds"
    write_aligned(root, "train", count=1, size=8)
    with pytest.raises(DatasetError, match=r"000\.png: image of size 8x8 is smaller than the crop size 16x16"):
        AlignedDataset(root, preprocess=Preprocess(mode="crop", crop_size=16))[0]


@pytest.mark.parametrize("call, message", [
    (lambda root: AlignedDataset(root, "holdout"), "unknown split 'holdout'; allowed: train, train1, train2, val"),
    (lambda root: AlignedDataset(root, direction="AB"), "unknown direction 'AB'; allowed: AtoB, BtoA"),
    (lambda root: get_layout("pairs"), "unknown layout 'pairs'; registered: labelled, unaligned, aligned"),
    (lambda root: Preprocess(mode="zoom"), "unknown preprocess mode 'zoom'; registered: crop, none, resize"),
    (lambda root: Preprocess(load_size=16, crop_size=32), r"crop size \(32, 32\) is larger than load size"),
])
def test_bad_arguments(aligned_root, call, message):
    with pytest.raises(DatasetError, match=message):
        call(aligned_root)


def test_labelled_is_label_to_image_only(tmp_path):
    write_labelled(tmp_path / "lab", "train", count=1)
    with pytest.raises(DatasetError, match="maps label map -> image; direction must be AtoB"):
        LabelledDataset(tmp_path / "lab", direction="BtoA")


def test_detection_reports_what_each_layout_found_and_lacks(tmp_path):
    root = tmp_path / "half"
    write_unaligned(root, "train")
    (root / "trainB").rename(root / "elsewhere")
    with pytest.raises(DatasetError) as caught:
        detect_layout(root)
    message = str(caught.value)
    assert "does not hold any known layout" in message
    assert "unaligned: found trainA/; missing trainB/" in message
    assert "aligned: found nothing; missing train/" in message


def test_detection_finds_each_layout_and_honours_dataset_json(tmp_path):
    write_aligned(tmp_path / "a", "train", count=1)
    write_unaligned(tmp_path / "u", "train")
    write_labelled(tmp_path / "l", "train", count=1)
    assert [detect_layout(tmp_path / n).layout for n in "aul"] == ["aligned", "unaligned", "labelled"]
    (tmp_path / "a" / "dataset.json").write_text(json.dumps({"layout": "unaligned"}))
    with pytest.raises(DatasetError, match="does not hold the unaligned layout declared in dataset.json"):
        create_dataset(tmp_path / "a")
    (tmp_path / "a" / "dataset.json").write_text(json.dumps({"layout": "mosaic"}))
    with pytest.raises(DatasetError, match="declares layout 'mosaic'"):
        detect_layout(tmp_path / "a")


def test_imagedata_imports_only_the_foundation_from_the_project():
    package = Path(__file__).resolve().parents[2] / "imagedata"
    project = ("supernet", "distill", "evaluators", "nas", "dashboards")
    for path in package.rglob("*.py"):
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("import", "from"):
                assert words[1].split(".")[0] not in project, f"{path.name} imports {words[1]}"
