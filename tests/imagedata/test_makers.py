"""Built-in makers: byte-identical per seed, in the layouts the loaders read, with the content promised."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagedata import (DatasetError, MakeOptions, Preprocess, colorize, create_dataset, detect_layout, get_maker,
                       list_makers, make_dataset, read_label_spec)

SMALL = MakeOptions(size=16, count=4, val_count=2, seed=0)


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_makers_are_registered():
    assert list_makers() == ["edges2photo", "labels2scene", "photo2texture"]
    with pytest.raises(DatasetError, match="unknown dataset maker 'nope'; registered: edges2photo"):
        get_maker("nope")


@pytest.mark.parametrize("name", list_makers())
def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path, name):
    first = make_dataset(name, tmp_path / "a", SMALL, progress=False)
    make_dataset(name, tmp_path / "b", SMALL, progress=False)
    make_dataset(name, tmp_path / "c", MakeOptions(size=16, count=4, val_count=2, seed=1), progress=False)
    a, b, c = digests(tmp_path / "a"), digests(tmp_path / "b"), digests(tmp_path / "c")
    assert a == b
    images = [f for f in a if f.endswith(".png")]
    assert images and all(a[f] != c[f] for f in images if "/labels/" not in f)
    assert set(first.layouts) == set(get_maker(name).layouts)


@pytest.mark.parametrize("name", list_makers())
def test_output_loads_in_its_layouts(tmp_path, name):
    result = make_dataset(name, tmp_path / name, SMALL, progress=False)
    for layout, root in result.layouts.items():
        assert detect_layout(root).layout == layout
        for split, count in (("train", 4), ("val", 2)):
            dataset = create_dataset(root, split=split, preprocess=Preprocess.for_size(16))
            assert len(dataset) == count
            assert dataset.validate(progress=False) >= count
            item = dataset[0]
            assert item["A"].shape == item["B"].shape == (3, 16, 16)
            assert -1 <= float(item["A"].min()) and float(item["B"].max()) <= 1


@pytest.mark.parametrize("name", list_makers())
def test_an_image_does_not_depend_on_the_count(tmp_path, name):
    make_dataset(name, tmp_path / "few", MakeOptions(size=16, count=2, val_count=1), progress=False)
    make_dataset(name, tmp_path / "more", MakeOptions(size=16, count=3, val_count=2), progress=False)
    few, more = digests(tmp_path / "few"), digests(tmp_path / "more")
    assert all(more[f] == digest for f, digest in few.items() if f.endswith(".png"))


def test_labels2scene_writes_the_same_pixels_in_both_layouts(tmp_path):
    result = make_dataset("labels2scene", tmp_path / "s", MakeOptions(size=32, count=24, val_count=2), progress=False)
    labelled, aligned = result.layouts["labelled"], result.layouts["aligned"]
    spec = read_label_spec(labelled)
    assert spec.num_classes == 8 and spec.ignore_index == 255
    seen, photos, labels = set(), [], []
    for path in sorted((labelled / "train" / "images").glob("*.png")):
        photo, label = pixels(path), pixels(labelled / "train" / "labels" / path.name)
        assert photo.shape == (32, 32, 3) and label.shape == (32, 32) and label.dtype == np.uint8
        pair = pixels(aligned / "train" / path.name)
        assert pair.shape == (32, 64, 3)
        assert np.array_equal(pair[:, :32], colorize(label.astype(np.int64), spec))
        assert np.array_equal(pair[:, 32:], photo)
        seen |= set(np.unique(label).tolist())
        photos.append(photo.reshape(-1, 3).astype(np.float64))
        labels.append(label.reshape(-1))
    assert seen == set(range(8))
    photos, labels = np.concatenate(photos), np.concatenate(labels)
    # not solvable by one colour per class: nearest class-mean colour gets well under a perfect score
    means = np.stack([photos[labels == c].mean(axis=0) for c in range(8)])
    predicted = np.argmin(((photos[:, None, :] - means[None]) ** 2).sum(axis=-1), axis=1)
    ious = [((predicted == c) & (labels == c)).sum() / ((predicted == c) | (labels == c)).sum() for c in range(8)]
    assert np.mean(ious) < 0.6
    assert all(photos[labels == c].std(axis=0).mean() > 8 for c in range(8))  # textured, not flat


def test_edges2photo_pairs_binary_edges_with_colour_photos(tmp_path):
    root = make_dataset("edges2photo", tmp_path / "e", MakeOptions(size=32, count=6, val_count=2),
                        progress=False).layouts["aligned"]
    for path in sorted((root / "train").glob("*.png")):
        pair = pixels(path)
        edges, photo = pair[:, :32], pair[:, 32:]
        assert set(np.unique(edges).tolist()) <= {0, 255}
        assert (edges[..., 0] == edges[..., 1]).all() and (edges[..., 0] == 0).any()
        assert not (photo[..., 0] == photo[..., 2]).all()
    assert json.loads((root / "dataset.json").read_text())["layout"] == "aligned"


def test_photo2texture_domains_differ(tmp_path):
    root = make_dataset("photo2texture", tmp_path / "p", SMALL, progress=False).layouts["unaligned"]
    for path in (root / "trainB").glob("*.png"):
        texture = pixels(path)
        assert (texture[..., 0] == texture[..., 1]).all()  # grey textures
    colour = [pixels(p) for p in (root / "trainA").glob("*.png")]
    assert all(not (c[..., 0] == c[..., 1]).all() for c in colour)


def test_refuses_a_non_empty_output_and_bad_options(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="full is not empty"):
        make_dataset("edges2photo", tmp_path / "full", SMALL, progress=False)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    with pytest.raises(DatasetError, match="size must be between 16 and 1024"):
        MakeOptions(size=4)
    with pytest.raises(DatasetError, match="counts must be at least 1"):
        MakeOptions(count=0)
