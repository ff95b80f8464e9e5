"""Segmenters: the registry, seeded training on real labelled photos, checkpoints and TorchScript files."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evaluators.segmenter import (FORMAT, Segmenter, SegmenterError, create_segmenter_network, is_torchscript_file,
                                  list_segmenters, load_segmenter, save_segmenter, train_segmenter)
from foundation.errors import GanasError
from imagedata import Preprocess, create_dataset
from supernet import save_generator

from .evaluation_helpers import made_data, one_torch_thread, save_torchscript, tiny_supernet  # noqa: F401

NUM_CLASSES = 8  # labels2scene


def labelled_train(root):
    return create_dataset(root, "labelled", "train", preprocess=Preprocess.for_size(32), seed=0, train=True)


@pytest.mark.parametrize("name", list_segmenters())
def test_every_registered_segmenter_maps_any_size_to_logits(name):
    network = create_segmenter_network(name, 5).eval()
    with torch.no_grad():
        out = network(torch.randn(2, 3, 20, 28))
    assert out.shape == (2, 5, 20, 28)


def test_registry_errors():
    assert {"tiny_unet", "dilated_fcn"} <= set(list_segmenters())
    with pytest.raises(SegmenterError, match="unknown segmenter 'drn'; registered: tiny_unet"):
        create_segmenter_network("drn", 5)
    with pytest.raises(SegmenterError, match="at least 2 classes"):
        create_segmenter_network("tiny_unet", 1)
    with pytest.raises(SegmenterError, match="cannot be built"):
        create_segmenter_network("tiny_unet", 3, depth=4)
    assert issubclass(SegmenterError, GanasError)


def test_training_is_seeded_and_lowers_the_loss(made_data):
    dataset = labelled_train(made_data["labelled"])
    first = train_segmenter(dataset, steps=12, batch_size=4, seed=5, progress=False, width=8)
    second = train_segmenter(dataset, steps=12, batch_size=4, seed=5, progress=False, width=8)
    other = train_segmenter(dataset, steps=12, batch_size=4, seed=6, progress=False, width=8)
    assert first.steps == 12 and len(first.losses) == 12 and first.num_classes == NUM_CLASSES
    assert first.losses == second.losses
    for key, value in first.network.state_dict().items():
        assert torch.equal(value, second.network.state_dict()[key]), key
    assert first.losses != other.losses
    assert sum(first.losses[-3:]) / 3 < first.losses[0]  # ln(8) = 2.08 at the start
    assert not first.network.training


def test_training_needs_label_maps(made_data):
    aligned = create_dataset(made_data["aligned"], "aligned", "train", preprocess=Preprocess(mode="none"))
    with pytest.raises(SegmenterError, match="labelled dataset"):
        train_segmenter(aligned, steps=1, progress=False)
    with pytest.raises(SegmenterError, match="steps >= 1"):
        train_segmenter(labelled_train(made_data["labelled"]), steps=0, progress=False)


def test_checkpoint_round_trip_is_weights_only(made_data, tmp_path):
    dataset = labelled_train(made_data["labelled"])
    trained = train_segmenter(dataset, "dilated_fcn", steps=2, batch_size=2, progress=False, width=6)
    identity = {"hash": dataset.fingerprint(), "split": "train"}
    path = save_segmenter(trained.network, tmp_path / "seg.pt", trained.arch, trained.hparams, NUM_CLASSES,
                          dataset.spec.classes, identity, val_miou=0.25, steps=2, image_size=(32, 32))
    record = torch.load(path, weights_only=True)
    assert record["format"] == FORMAT and record["num_classes"] == NUM_CLASSES and record["val_miou"] == 0.25
    assert record["dataset"]["hash"] == dataset.fingerprint() and record["classes"][0] == "sky"
    assert not is_torchscript_file(path)
    loaded = load_segmenter(path)
    assert loaded.num_classes == NUM_CLASSES and loaded.classes == dataset.spec.classes
    assert loaded.identity.startswith("segmenter:") and loaded.identity.endswith(":seg.pt")
    assert loaded.info["val_miou"] == 0.25
    images = torch.stack([dataset[i]["B"] for i in range(3)])
    with torch.no_grad():
        expected = trained.network(images).argmax(1)
    assert torch.equal(loaded.predict(images), expected)


class HalfResolution(nn.Module):
    """Logits at half the input size from a fixed 1x1 conv (5 classes)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.head = nn.Conv2d(3, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.avg_pool2d(x, 2))


def test_torchscript_segmenter_is_detected_probed_and_upsampled(tmp_path):
    module = HalfResolution().eval()
    path = save_torchscript(module, tmp_path / "seg.ts", torch.zeros(1, 3, 16, 16))
    assert is_torchscript_file(path)
    segmenter = load_segmenter(path)
    assert segmenter.num_classes == 5 and segmenter.identity.startswith("torchscript:")
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        expected = F.interpolate(module(images), size=(16, 16), mode="bilinear", align_corners=False).argmax(1)
    predicted = segmenter.predict(images)
    assert predicted.shape == (2, 16, 16) and predicted.dtype == torch.int64
    assert torch.equal(predicted, expected)


def test_predict_rejects_logits_of_the_wrong_class_count():
    segmenter = Segmenter(nn.Conv2d(3, 4, 1), num_classes=6, identity="test")
    with pytest.raises(SegmenterError, match=r"expected logits \(1, 6, H, W\)"):
        segmenter.predict(torch.zeros(1, 3, 8, 8))


def test_unusable_files_are_typed_errors(tmp_path):
    with pytest.raises(SegmenterError, match="does not exist; train one with `ganas train segmenter"):
        load_segmenter(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(SegmenterError, match="neither TorchScript nor a readable checkpoint"):
        load_segmenter(garbage)
    generator = save_generator(tiny_supernet(), tmp_path / "generator.pt")
    with pytest.raises(SegmenterError, match="not a ganas segmenter checkpoint"):
        load_segmenter(generator)
