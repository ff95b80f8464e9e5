"""A registered supernet on a tiny generated dataset, shared by the search-service tests."""
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch


@dataclass(frozen=True)
class SearchFixture:
    workspace: Path
    checkpoint: Path
    name: str

    @property
    def teacher(self) -> Path:
        return self.checkpoint.parent / "teacher.pt"


def build_registered_supernet(root: Path, name: str = "tiny", workspace: Path | None = None) -> SearchFixture:
    """Data, teacher and supernet under ``root``, registered in the workspace ``workspace`` (default ``root/ws``;
    ``root`` itself holds everything in one workspace, as the demo does)."""
    from distill.jobs import DataSpec
    from foundation.hashing import file_sha256
    from imagedata import MakeOptions, make_dataset
    from nas.registry import register_supernet
    from nas.store import Store
    from nas.workspace import Workspace
    from supernet import create_generator, save_generator

    make_dataset("labels2scene", root / "data", MakeOptions(size=32, count=10, val_count=2), progress=False)
    data = DataSpec(root / "data" / "labelled", size=32, holdout=0.5)
    data.ensure_split(0)
    torch.manual_seed(0)
    teacher = save_generator(create_generator("resnet", ngf=8, n_blocks=3), root / "teacher.pt", kind="teacher")
    supernet = create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=3)
    checkpoint = save_generator(supernet, root / "supernet.pt", kind="supernet", space="channels-16",
                                dataset=data.describe("train1", 0), method="test",
                                teacher={"path": str(teacher), "sha256": file_sha256(teacher), "arch": None})
    workspace = Workspace(workspace or root / "ws").ensure()
    with Store(workspace.database_url) as store:
        register_supernet(store, checkpoint, name, workspace=workspace)
    return SearchFixture(workspace.root, checkpoint, name)


@pytest.fixture(scope="session")
def registered_supernet(tmp_path_factory) -> SearchFixture:
    return build_registered_supernet(tmp_path_factory.mktemp("search"))


@pytest.fixture
def inception_weights(tmp_path, monkeypatch) -> Path:
    """A file where ganas looks for the FID Inception weights ($GANAS_INCEPTION_WEIGHTS): enough for a search's
    creation, which checks that the file is there and readable (workers load it)."""
    path = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    path.write_bytes(b"inception weights")
    monkeypatch.setenv("GANAS_INCEPTION_WEIGHTS", str(path))
    return path
