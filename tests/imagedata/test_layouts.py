"""Each layout loads with the right shapes and ranges, and pix2pix preprocessing is applied as specified."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from imagedata import (AlignedDataset, LabelledDataset, Preprocess, UnalignedDataset, colorize, create_dataset,
                       list_layouts, one_hot, read_label_spec)

from .conftest import CLASSES, IGNORE, save, write_aligned, write_labelled, write_unaligned


def expected_tensor(array: np.ndarray) -> torch.Tensor:
    """Independent reference: uint8 HxWx3 -> CHW float in [-1, 1]."""
    return torch.tensor(array.transpose(2, 0, 1).astype(np.float64) / 127.5 - 1.0, dtype=torch.float32)


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float32 rounding (one 8-bit level is 0.0078, so any pixel error fails)."""
    return a.shape == b.shape and float((a - b).abs().max()) < 1e-6


def candidate_views(image: np.ndarray, crop: int) -> list[np.ndarray]:
    """Every crop x flip of ``image`` a train item may show."""
    height, width = image.shape[:2]
    views = []
    for top in range(height - crop + 1):
        for left in range(width - crop + 1):
            window = image[top:top + crop, left:left + crop]
            views += [window, window[:, ::-1]]
    return views


def bicubic(array: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(array).resize((size, size), Image.Resampling.BICUBIC))


def test_every_layout_is_registered():
    assert list_layouts() == ["labelled", "unaligned", "aligned"]


def test_aligned_eval_items_are_exact_halves(aligned_root):
    halves = write_aligned(aligned_root, "val", count=3, seed=1)  # rewrite to know the pixels
    dataset = AlignedDataset(aligned_root, "val", Preprocess(load_size=20, crop_size=16))
    assert len(dataset) == 3 and not dataset.train
    item = dataset[1]
    assert item["A"].shape == (3, 16, 16) and item["A"].dtype == torch.float32
    assert same(item["A"], expected_tensor(halves[1]))  # eval: resize to crop size (a no-op here), no flip
    assert item["A"].min() >= -1 and item["B"].max() <= 1
    assert item["A_path"].endswith("001.png")


def test_direction_swaps_halves(aligned_root):
    forward = AlignedDataset(aligned_root, "train", Preprocess.for_size(16), seed=3)
    backward = AlignedDataset(aligned_root, "train", Preprocess.for_size(16), seed=3, direction="BtoA")
    for index in range(4):
        assert torch.equal(forward[index]["A"], backward[index]["B"])
        assert torch.equal(forward[index]["B"], backward[index]["A"])
    assert not torch.equal(forward[0]["A"], forward[0]["B"])


def test_train_items_share_crop_and_flip_between_halves(tmp_path):
    root = tmp_path / "inv"
    halves = write_aligned(root, "train", count=6, size=20, inverted=True)  # B = 255 - A pixelwise
    dataset = AlignedDataset(root, "train", Preprocess(mode="crop", crop_size=16))
    flips = set()
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for index in range(6):
            item = dataset[index]
            assert same(item["B"], -item["A"])  # same window, same flip: exact
            views = candidate_views(halves[index], 16)
            matches = [k for k, v in enumerate(views) if same(expected_tensor(np.ascontiguousarray(v)), item["A"])]
            assert matches, "A is not a crop/flip of its source half"
            flips.add(matches[0] % 2)
    assert flips == {0, 1}  # both flipped and unflipped items occur


def test_resize_and_crop_is_a_window_of_the_bicubic_resize(tmp_path):
    root = tmp_path / "same"
    halves = write_aligned(root, "train", count=4, size=16, same_halves=True)
    dataset = AlignedDataset(root, "train", Preprocess(load_size=20, crop_size=16))
    for index in range(4):
        item = dataset[index]
        assert torch.equal(item["A"], item["B"])
        views = candidate_views(bicubic(halves[index], 20), 16)
        assert any(same(expected_tensor(np.ascontiguousarray(v)), item["A"]) for v in views)


def test_augmentation_is_a_function_of_seed_epoch_and_index(aligned_root):
    options = Preprocess(load_size=22, crop_size=16)
    first = AlignedDataset(aligned_root, "train", options, seed=5)
    again = AlignedDataset(aligned_root, "train", options, seed=5)
    other_seed = AlignedDataset(aligned_root, "train", options, seed=6)
    for index in range(8):
        assert torch.equal(first[index]["A"], again[index]["A"])
    assert any(not torch.equal(first[i]["A"], other_seed[i]["A"]) for i in range(8))
    epoch0 = [first[i]["A"] for i in range(8)]
    first.set_epoch(1)
    assert any(not torch.equal(epoch0[i], first[i]["A"]) for i in range(8))
    first.set_epoch(0)  # a resumed run at epoch 0 sees the same items, in any order
    assert all(torch.equal(epoch0[i], first[i]["A"]) for i in reversed(range(8)))


def test_eval_is_fixed_resize_without_flip(aligned_root):
    halves = write_aligned(aligned_root, "val", count=3, size=16, seed=1)
    dataset = AlignedDataset(aligned_root, "val", Preprocess(load_size=14, crop_size=12), seed=1)
    items = [dataset[i]["A"] for i in range(3)]
    dataset.set_epoch(7)
    for i in range(3):
        assert torch.equal(dataset[i]["A"], items[i])
        assert same(items[i], expected_tensor(bicubic(halves[i], 12)))


def test_crop_mode_eval_is_the_centre_crop(aligned_root):
    halves = write_aligned(aligned_root, "val", count=1, size=16, seed=2)
    item = AlignedDataset(aligned_root, "val", Preprocess(mode="crop", crop_size=10))[0]
    assert same(item["A"], expected_tensor(halves[0][3:13, 3:13]))


def test_grayscale_rgba_and_16bit_become_rgb(tmp_path):
    root = tmp_path / "modes"
    gray = np.full((8, 16), 200, np.uint8)
    save(root / "train" / "gray.png", gray)
    rgba = np.zeros((8, 16, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[..., 3] = 0  # fully transparent: alpha is dropped, colour kept
    save(root / "train" / "rgba.png", rgba)
    Image.fromarray(np.full((8, 16), 65535, np.uint16)).save(root / "train" / "wide.png")
    dataset = AlignedDataset(root, "train", Preprocess(mode="none", flip=False))
    by_name = {dataset[i]["A_path"].rsplit("/", 1)[1]: dataset[i] for i in range(len(dataset))}
    assert by_name["gray.png"]["A"].shape == (3, 8, 8)
    assert torch.allclose(by_name["gray.png"]["A"], torch.full((3, 8, 8), 200 / 127.5 - 1))
    assert torch.allclose(by_name["rgba.png"]["B"][:, 0, 0], torch.tensor([10, 20, 30]) / 127.5 - 1)
    assert torch.equal(by_name["wide.png"]["A"], torch.ones(3, 8, 8))


def test_unaligned_pairs_and_length(tmp_path):
    root = tmp_path / "un"
    write_unaligned(root, "train", count_a=5, count_b=8)
    write_unaligned(root, "val", count_a=3, count_b=2, seed=1)
    train = UnalignedDataset(root, "train", Preprocess.for_size(16), seed=0)
    assert len(train) == 8
    item = train[6]
    assert item["A"].shape == item["B"].shape == (3, 16, 16)
    assert item["A_path"].endswith("trainA/a001.png")  # 6 % 5
    b_choices = {train[i]["B_path"] for i in range(8)}
    assert len(b_choices) > 1 and train[6]["B_path"] == item["B_path"]
    val = UnalignedDataset(root, "val", Preprocess.for_size(16))
    assert len(val) == 3
    assert [val[i]["B_path"].rsplit("/", 1)[1] for i in range(3)] == ["b000.png", "b001.png", "b000.png"]
    swapped = UnalignedDataset(root, "val", Preprocess.for_size(16), direction="BtoA")
    assert swapped[0]["A_path"].endswith("valB/b000.png") and torch.equal(swapped[0]["A"], val[0]["B"])


def test_labelled_items_share_geometry_and_keep_exact_indices(tmp_path):
    root = tmp_path / "lab"
    labels = write_labelled(root, "train", count=4, size=20)
    spec = read_label_spec(root)
    for i, label in enumerate(labels):  # make each photo the colour-coding of its label map
        save(root / "train" / "images" / f"s{i:03d}.png", colorize(label.astype(np.int64), spec))
    dataset = LabelledDataset(root, "train", Preprocess(mode="crop", crop_size=12))
    for epoch in range(2):
        dataset.set_epoch(epoch)
        for index in range(4):
            item = dataset[index]
            assert item["label"].dtype == torch.int64 and item["label"].shape == (12, 12)
            assert torch.equal(item["A"], item["B"])  # photo and label cropped and flipped alike
            views = candidate_views(labels[index], 12)
            assert any(np.array_equal(v, item["label"].numpy()) for v in views)


def test_labelled_resize_is_nearest_neighbour(tmp_path):
    root = tmp_path / "lab"
    labels = write_labelled(root, "val", count=2, size=16)
    item = LabelledDataset(root, "val", Preprocess(load_size=28, crop_size=24))[1]
    expected = np.asarray(Image.fromarray(labels[1]).resize((24, 24), Image.Resampling.NEAREST))
    assert np.array_equal(item["label"].numpy(), expected)
    assert set(np.unique(expected)) <= {0, 1, 2, IGNORE}
    colours = colorize(expected.astype(np.int64), read_label_spec(root))
    assert same(item["A"], expected_tensor(colours))
    assert torch.equal(item["A"][:, 0, 0], torch.full((3,), -1.0))  # ignored pixel: black


def test_default_palette_is_distinct_and_never_black(tmp_path):
    root = tmp_path / "lab"
    write_labelled(root, "train", count=1)
    spec = read_label_spec(root)
    assert spec.classes == tuple(CLASSES) and spec.ignore_index == IGNORE
    assert spec.colors == ((128, 0, 0), (0, 128, 0), (128, 128, 0))  # PASCAL VOC colours 1, 2, 3


def test_one_hot_zeroes_ignored_pixels():
    label = torch.tensor([[0, 2], [255, 1]])
    planes = one_hot(label, 3)
    assert planes.shape == (3, 2, 2)
    assert planes[:, 0, 0].tolist() == [1, 0, 0] and planes[:, 0, 1].tolist() == [0, 0, 1]
    assert planes[:, 1, 0].tolist() == [0, 0, 0] and planes[:, 1, 1].tolist() == [0, 1, 0]


def test_items_collate_in_a_dataloader(tmp_path):
    root = tmp_path / "lab"
    write_labelled(root, "train", count=6)
    dataset = create_dataset(root, split="train", preprocess=Preprocess.for_size(16))
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert batch["A"].shape == (4, 3, 16, 16) and batch["label"].shape == (4, 16, 16)
    assert len(batch["B_path"]) == 4
