"""A checkpoint whose bytes were overwritten is refused at registration (supernet and teacher) and before a search
or a worker uses it, with one message naming the file and the damaged member; nothing is written to the store."""
import shutil

import pytest

from foundation.hashing import file_sha256
from nas.cli import main
from nas.orchestrator import Orchestrator, OrchestratorSettings
from nas.search_setup import create_search
from nas.store import SearchState, Store
from nas.worker import load_supernet
from nas.workspace import Workspace
from supernet.errors import CheckpointError
from tests.supernet.test_checkpoint import flip_tensor_bytes

LOCAL = OrchestratorSettings(workers=1, executor="local", progress=False, lease_seconds=60)


def test_registration_refuses_a_corrupt_supernet_or_teacher(registered_supernet, tmp_path, capsys):
    supernet, teacher = tmp_path / "supernet.pt", tmp_path / "teacher.pt"
    shutil.copy(registered_supernet.checkpoint, supernet)
    shutil.copy(registered_supernet.teacher, teacher)
    ws = tmp_path / "ws"
    register = ["supernet", "--workspace", str(ws), "register"]
    assert main(register + [str(supernet), "--name", "ok"]) == 0
    capsys.readouterr()
    member = flip_tensor_bytes(teacher)
    assert main(register + [str(supernet), "--name", "bad-teacher", "--teacher", str(teacher)]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {teacher} is corrupt: its member {member} fails its CRC-32 check" in err
    assert "Traceback" not in err
    member = flip_tensor_bytes(supernet)
    assert main(register + [str(supernet), "--name", "bad-supernet"]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {supernet} is corrupt: its member {member}" in err and "Traceback" not in err
    with Store(Workspace(ws).database_url) as store:
        assert [s.name for s in store.list_supernets()] == ["ok"]


def test_a_supernet_registered_before_the_check_is_refused_before_a_search_runs(registered_supernet, tmp_path):
    """A file already corrupt when it was registered (by a ganas that did not check) still matches its SHA-256."""
    checkpoint = tmp_path / "supernet.pt"
    shutil.copy(registered_supernet.checkpoint, checkpoint)
    member = flip_tensor_bytes(checkpoint)
    ws = Workspace(tmp_path / "ws").ensure()
    with Store(Workspace(registered_supernet.workspace).database_url) as store:
        good = store.get_supernet(registered_supernet.name)
    with Store(ws.database_url) as store:
        store.register_supernet("old", architecture=good.architecture, space=good.space, checkpoint=str(checkpoint),
                                checkpoint_sha256=file_sha256(checkpoint), hparams=dict(good.hparams),
                                dataset=dict(good.dataset), metrics=list(good.metrics))
        search = create_search(store, "old", budgets=[80_000_000], metric="ssim", strategy="random", trials=2)
        with pytest.raises(CheckpointError, match=f"its member {member} fails its CRC-32 check"):
            Orchestrator(store, ws, search.id, LOCAL, log=lambda m: None).run()
        assert store.get_search(search.id).state == SearchState.CREATED and not store.candidates(search.id)
    with pytest.raises(CheckpointError, match=f"registered supernet is corrupt: its member {member}"):
        load_supernet(checkpoint.read_bytes(), file_sha256(checkpoint))  # what a worker does with the bytes
