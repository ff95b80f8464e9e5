"""Tiny data, extractors and generators shared by the evaluation tests (fixtures are imported by each module)."""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evaluators.features import FeatureExtractor
from imagedata import MakeOptions, Preprocess, create_dataset, make_dataset
from supernet import create_generator

SIZE = 32
SUBNET = (4, 4, 8, 4, 8, 4, 8, 4)


class PoolExtractor(FeatureExtractor):
    """Features = 2x2 average pools of each channel (12-d), counting its calls and images."""

    channels = 3

    def __init__(self, identity: str = "pool2x2-test") -> None:
        super().__init__()
        self.num_features = 12
        self.identity = identity
        self.calls = 0
        self.images = 0

    def forward(self, images: Tensor) -> Tensor:
        self.calls += 1
        self.images += images.shape[0]
        return F.adaptive_avg_pool2d(images, 2).flatten(1)


class ScriptablePool(nn.Module):
    """The same features as :class:`PoolExtractor`, saved as a TorchScript extractor file."""

    def __init__(self) -> None:
        super().__init__()
        self.num_features = 12

    def forward(self, images: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(images, 2).flatten(1)


def save_torchscript(module: nn.Module, path: Path, example: Tensor | None = None) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.trace(module, example) if example is not None else torch.jit.script(module)
        torch.jit.save(scripted, str(path))
    return path


class Negate(nn.Module):
    """A 'generator' returning ``scale * -x``: exact targets for inverted A|B pairs when scale is 1."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.anchor = nn.Parameter(torch.zeros(()))  # so the evaluator finds a device

    def forward(self, x: Tensor) -> Tensor:
        return -self.scale * x + self.anchor


def tiny_supernet(seed: int = 0):
    torch.manual_seed(seed)
    return create_generator("mobile_resnet", ngf=8, n_blocks=3, elastic=True)


def open_split(root: Path, split: str = "val", **kwargs):
    return create_dataset(root, None, split, preprocess=Preprocess(mode="none"), train=False, **kwargs)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread per test: on the shared 2-core machine two OpenMP threads wait on each other
    (three 12-step segmenter trainings took 11x longer with 2 threads under load than with 1)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def made_data(tmp_path_factory) -> dict[str, Path]:
    """labels2scene (labelled + aligned) and photo2texture (unaligned) at 32 px, 6 train / 5 val images."""
    out = tmp_path_factory.mktemp("made")
    options = MakeOptions(size=SIZE, count=6, val_count=5, seed=0)
    scene = make_dataset("labels2scene", out / "scene", options, progress=False)
    unpaired = make_dataset("photo2texture", out / "p2t", options, progress=False)
    return {"labelled": scene.layouts["labelled"], "aligned": scene.layouts["aligned"],
            "unaligned": unpaired.layouts["unaligned"]}


@pytest.fixture
def labelled_copy(made_data, tmp_path) -> Path:
    """A private copy of the labelled dataset (tests that edit files)."""
    return Path(shutil.copytree(made_data["labelled"], tmp_path / "labelled"))
