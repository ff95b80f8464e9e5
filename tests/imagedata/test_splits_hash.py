"""The train1/train2 split is deterministic, disjoint and recorded; the content hash tracks file bytes."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from imagedata import (SPLIT_FILE, AlignedDataset, DatasetError, Preprocess, content_hash, create_dataset,
                       read_split_record, split_dataset)

from .conftest import write_aligned, write_labelled, write_unaligned


def names(record, part, role):
    return [Path(f).stem for f in record.parts[part].roles[role]]


def test_split_is_deterministic_disjoint_and_covers_train(tmp_path):
    root = tmp_path / "ds"
    write_aligned(root, "train", count=10)
    first = split_dataset(root, fraction=0.3, seed=4, write=False)
    again = split_dataset(root, fraction=0.3, seed=4, write=False)
    other = split_dataset(root, fraction=0.3, seed=5, write=False)
    assert first == again and first != other
    held, kept = set(names(first, "train2", "AB")), set(names(first, "train1", "AB"))
    assert len(held) == 3 and len(kept) == 7 and not held & kept
    assert held | kept == {f"{i:03d}" for i in range(10)}
    assert len(split_dataset(root, count=4, seed=4, write=False).parts["train2"].roles["AB"]) == 4


def test_split_is_recorded_and_loaders_use_it(tmp_path):
    root = tmp_path / "ds"
    write_aligned(root, "train", count=10)
    record = split_dataset(root, fraction=0.2, seed=1)
    saved = json.loads((root / SPLIT_FILE).read_text())
    assert saved["parts"]["train2"]["roles"]["AB"] == list(record.parts["train2"].roles["AB"])
    assert saved["parts"]["train2"]["hash"] == content_hash(root, record.parts["train2"].roles["AB"])
    assert read_split_record(root / SPLIT_FILE) == record
    train1 = AlignedDataset(root, "train1", Preprocess.for_size(16))
    train2 = AlignedDataset(root, "train2", Preprocess.for_size(16))
    assert len(train1) == 8 and len(train2) == 2
    assert train1.train and not train2.train  # search scores the held-out part with eval preprocessing
    loaded = {Path(train2[i]["A_path"]).relative_to(root).as_posix() for i in range(2)}
    assert loaded == set(record.parts["train2"].roles["AB"])
    assert train2.fingerprint() == record.hashes["train2"]


def test_paired_layouts_with_the_same_stems_hold_out_the_same_stems(tmp_path):
    write_aligned(tmp_path / "a", "train", count=9)
    write_labelled(tmp_path / "l", "train", count=9)
    aligned = split_dataset(tmp_path / "a", fraction=0.34, seed=2, write=False)
    labelled = split_dataset(tmp_path / "l", fraction=0.34, seed=2, write=False)
    held = names(labelled, "train2", "image")
    assert held == names(labelled, "train2", "label")  # images keep their label maps
    assert [f"s{s}" for s in names(aligned, "train2", "AB")] == held


def test_unaligned_domains_are_split_separately(tmp_path):
    root = tmp_path / "un"
    write_unaligned(root, "train", count_a=10, count_b=20)
    record = split_dataset(root, fraction=0.2, seed=0)
    assert len(record.parts["train2"].roles["A"]) == 2 and len(record.parts["train2"].roles["B"]) == 4
    assert len(create_dataset(root, "unaligned", "train1")) == 16


def test_changed_training_folder_invalidates_the_split(tmp_path):
    root = tmp_path / "ds"
    write_aligned(root, "train", count=6)
    split_dataset(root, count=2)
    write_aligned(root / "extra", "train", count=1)
    shutil.move(root / "extra" / "train" / "000.png", root / "train" / "new.png")
    with pytest.raises(DatasetError, match=r"1 added \(e\.g\. train/new\.png\).*ganas data split"):
        AlignedDataset(root, "train1")


def test_missing_split_file_says_how_to_create_it(tmp_path):
    root = tmp_path / "ds"
    write_aligned(root, "train", count=4)
    with pytest.raises(DatasetError, match=r"split\.json not found.*ganas data split"):
        AlignedDataset(root, "train2")


@pytest.mark.parametrize("kwargs", [dict(fraction=0.01), dict(fraction=1.0), dict(count=5), dict(count=0),
                                    dict(), dict(fraction=0.5, count=2)])
def test_impossible_holdouts_are_refused(tmp_path, kwargs):
    root = tmp_path / "ds"
    write_aligned(root, "train", count=5)
    with pytest.raises(DatasetError):
        split_dataset(root, write=False, **kwargs)


def test_content_hash_matches_its_definition(tmp_path):
    root = tmp_path / "ds"
    write_aligned(root, "train", count=3)
    files = ["train/002.png", "train/000.png"]
    lines = ""
    for name in sorted(files):
        data = (root / name).read_bytes()
        lines += f"{name}\t{len(data)}\t{hashlib.sha256(data).hexdigest()}\n"
    assert content_hash(root, files) == hashlib.sha256(lines.encode()).hexdigest()


def test_fingerprint_follows_bytes_and_names_not_mtimes(tmp_path):
    root = tmp_path / "ds"
    write_aligned(root, "train", count=4)
    before = AlignedDataset(root, "train").fingerprint()
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)  # new inodes and mtimes
    assert AlignedDataset(copy, "train").fingerprint() == before
    target = root / "train" / "001.png"
    os.utime(target, (1, 1))
    assert AlignedDataset(root, "train").fingerprint() == before
    write_aligned(tmp_path / "other", "train", count=2, seed=9)  # same size, different pixels
    shutil.copy(tmp_path / "other" / "train" / "001.png", target)
    assert target.stat().st_size == (copy / "train" / "001.png").stat().st_size
    assert AlignedDataset(root, "train").fingerprint() != before
    shutil.copy(copy / "train" / "001.png", target)
    assert AlignedDataset(root, "train").fingerprint() == before
    (root / "train" / "001.png").rename(root / "train" / "009.png")
    assert AlignedDataset(root, "train").fingerprint() != before
