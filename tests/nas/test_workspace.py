"""A workspace can be moved, copied or mounted elsewhere: the store records paths inside it relative to its root,
MLflow's artifact locations follow it, and a copy never writes into (nor reads from) the original."""
import hashlib
import os
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from nas.executors import LocalExecutor
from nas.orchestrator import Orchestrator, OrchestratorSettings
from nas.registry import register_supernet
from nas.search_setup import SearchPlan, create_search
from nas.store import SearchState, Store
from nas.workspace import Workspace, recorded_path
from tests.nas.conftest import build_registered_supernet

LOCAL = OrchestratorSettings(workers=1, executor="local", progress=False, lease_seconds=120)
SEARCH = dict(budgets=[60_000_000, 80_000_000], metric="ssim", strategy="random", batch_size=4)


def test_the_default_store_is_ganas_db_in_the_workspace_and_a_url_replaces_it(tmp_path):
    assert Workspace.resolve(tmp_path).database_url == f"sqlite:///{tmp_path.resolve() / 'ganas.db'}"
    assert Workspace.resolve(tmp_path, "postgresql://db/ganas").database_url == "postgresql://db/ganas"


def test_paths_inside_the_workspace_are_recorded_relative_and_outside_ones_absolute(tmp_path, monkeypatch):
    ws = Workspace(tmp_path / "ws")
    (ws.root / "models").mkdir(parents=True)
    assert ws.relative(ws.root / "models" / "g.pt") == "models/g.pt"
    assert ws.relative(ws.root / "models" / ".." / "data") == "data"  # normalised before it is compared
    assert ws.relative(tmp_path / "elsewhere" / "data") == str(tmp_path / "elsewhere" / "data")
    assert ws.relative(tmp_path / "ws-sibling") == str(tmp_path / "ws-sibling")  # a prefix is not a parent
    monkeypatch.chdir(ws.root / "models")
    assert ws.relative("g.pt") == "models/g.pt"  # a relative argument means the current folder
    assert recorded_path("g.pt", None) == str(ws.root / "models" / "g.pt")
    link = tmp_path / "link-to-ws"
    link.symlink_to(ws.root)
    assert Workspace(link).relative(ws.root / "models" / "g.pt") == "models/g.pt"
    moved = Workspace(tmp_path / "moved")
    assert moved.absolute("models/g.pt") == moved.root / "models" / "g.pt"
    assert moved.absolute("/data/set") == Path("/data/set")  # absolute: outside, or written by an older ganas


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A workspace holding its data, teacher and supernet (as the demo's does), with a done search logged to
    MLflow and a second one paused after its first batch."""
    root = tmp_path_factory.mktemp("workspace") / "original"
    fixture = build_registered_supernet(root, workspace=root)
    ws = Workspace(fixture.workspace)
    with Store(ws.database_url) as store:
        done = create_search(store, fixture.name, trials=4, seed=1, workspace=ws, **SEARCH)
        Orchestrator(store, ws, done.id, LOCAL, log=lambda m: None).run()
        paused = create_search(store, fixture.name, trials=8, seed=2, workspace=ws, **SEARCH)
        summary = Orchestrator(store, ws, paused.id, LOCAL, executor=PausingExecutor(store, paused.id, after=4),
                               log=lambda m: None).run()
        assert summary.state == "paused" and 0 < summary.counts.done < 8
    return ws, fixture.name, done.id, paused.id


class PausingExecutor(LocalExecutor):
    """Evaluates in-process and pauses the search (as `ganas search pause` does) after ``after`` results."""

    def __init__(self, store, search_id, after):
        self.store, self.search_id, self.after, self.seen = store, search_id, after, 0

    def wait(self, timeout):
        outcomes = super().wait(timeout)
        self.seen += sum(1 for o in outcomes if o.candidate_id >= 0)
        if self.seen >= self.after and self.store.get_search(self.search_id).state == SearchState.RUNNING:
            self.store.set_search_state(self.search_id, SearchState.PAUSED)
        return outcomes


def test_the_store_records_the_workspace_files_relative_to_it(original):
    ws, name, done_id, _ = original
    with Store(ws.database_url) as store:
        supernet, search = store.get_supernet(name), store.get_search(done_id)
    assert supernet.checkpoint == "supernet.pt" and supernet.teacher["path"] == "teacher.pt"
    assert supernet.dataset["root"] == "data/labelled" and SearchPlan.from_search(search).evaluation.data_root == \
        "data/labelled"
    located = SearchPlan.from_search(search).evaluation.located(Workspace(Path("/mnt/elsewhere")))
    assert located.data_root == "/mnt/elsewhere/data/labelled" and located.cache_dir == "/mnt/elsewhere/cache"


def test_a_search_names_its_metric_files_relative_to_the_workspace(original, tmp_path):
    from evaluators.segmenter import create_segmenter_network, save_segmenter

    ws, name, _, _ = original
    outside = tmp_path / "inception.pt"
    outside.write_bytes(b"")
    save_segmenter(create_segmenter_network("tiny_unet", 3, width=4), ws.root / "segmenter.pt", "tiny_unet",
                   {"width": 4}, 3)
    with Store(ws.database_url) as store:
        search = create_search(store, name, trials=1, workspace=ws, segmenter=str(ws.root / "segmenter.pt"),
                               inception_weights=str(outside), extractor="inception", **SEARCH)
    spec = SearchPlan.from_search(search).evaluation
    assert (spec.segmenter, spec.cache_dir, spec.extractor) == ("segmenter.pt", None, "inception")
    assert spec.inception_weights == str(outside)
    located = spec.located(ws)
    assert located.segmenter == str(ws.root / "segmenter.pt") and located.cache_dir == str(ws.cache)


def _snapshot(root: Path) -> dict:
    """Every file and folder under ``root`` with its size, modification time and content digest."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            stat = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            found[str(path.relative_to(root))] = (stat.st_size if digest else None, stat.st_mtime_ns, digest)
    return found


def _runs(ws: Workspace):
    from mlflow import MlflowClient

    client = MlflowClient(ws.mlflow_uri)
    experiment = client.get_experiment_by_name("ganas-search")
    return client, experiment, client.search_runs([experiment.experiment_id])


def _resume_and_search_again(ws: Workspace, name: str, paused_id: int) -> int:
    with Store(ws.database_url) as store:
        assert Orchestrator(store, ws, paused_id, LOCAL, log=lambda m: None).run().state == "done"
        again = create_search(store, name, trials=4, seed=5, workspace=ws, **SEARCH)
        assert Orchestrator(store, ws, again.id, LOCAL, log=lambda m: None).run().counts.done == 4
        return again.id


def test_a_copied_workspace_never_writes_into_the_original(original, tmp_path):
    ws, name, done_id, paused_id = original
    copy = Workspace(tmp_path / "copy")
    shutil.copytree(ws.root, copy.root, symlinks=True)
    before = _snapshot(ws.root)
    again_id = _resume_and_search_again(copy, name, paused_id)
    assert _snapshot(ws.root) == before  # nothing written, created or removed in the original
    client, experiment, runs = _runs(copy)
    mine = copy.mlflow_artifacts.resolve().as_uri()
    assert experiment.artifact_location == mine
    assert {r.data.tags.get("ganas.search_id") for r in runs} >= {str(done_id), str(paused_id), str(again_id)}
    assert all(r.info.artifact_uri.startswith(mine + "/") for r in runs)
    resumed = next(r for r in runs if r.data.tags.get("ganas.search_id") == str(paused_id))
    assert "pareto_front.json" in {a.path for a in client.list_artifacts(resumed.info.run_id)}
    assert (copy.mlflow_artifacts / resumed.info.run_id / "artifacts" / "pareto_front.json").is_file()


def test_a_moved_workspace_reads_and_writes_only_its_new_place(original, tmp_path):
    ws, name, done_id, paused_id = original
    staging, moved = tmp_path / "before-the-move", Workspace(tmp_path / "after-the-move")
    shutil.copytree(ws.root, staging, symlinks=True)
    staging.rename(moved.root)  # every path into the old place now fails to read
    with Store(moved.database_url) as store:  # the checkpoint's own paths name the old place: the record is kept
        recorded = store.get_supernet(name)
        assert register_supernet(store, moved.root / "supernet.pt", name, workspace=moved) == recorded
    _resume_and_search_again(moved, name, paused_id)
    assert not staging.exists()  # nothing written there either (not even an MLflow folder)
    _, _, runs = _runs(moved)
    assert all(r.info.artifact_uri.startswith(moved.mlflow_artifacts.as_uri() + "/") for r in runs)
    with Store(moved.database_url) as store:
        assert store.count_candidates(paused_id).done == 8


def test_only_the_workspace_own_mlflow_database_is_repointed(tmp_path):
    """A tracking database that does not lie beside the artifact root (shared by several workspaces, or a
    user's own) keeps the locations it holds."""
    from nas.mlflow_relocation import follow_workspace, relocate

    database = tmp_path / "shared" / "mlflow.db"
    database.parent.mkdir()
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE runs (run_uuid VARCHAR(32) PRIMARY KEY, artifact_uri VARCHAR(200), lifecycle INT)")
        conn.executemany("INSERT INTO runs VALUES (?, ?, 1)", [("a", "file:///old/mlartifacts/a/artifacts"),
                                                              ("b", "file:///old/mlartifacts-2/b"),
                                                              ("c", "s3://bucket/file:///old/mlartifacts")])
    old = "file:///old/mlartifacts"
    assert not follow_workspace(f"sqlite:///{database}", old, tmp_path / "ws" / "mlartifacts")
    assert not follow_workspace("http://127.0.0.1:5000", old, tmp_path / "ws" / "mlartifacts")
    assert not follow_workspace(f"sqlite:///{database}", "s3://bucket/mlartifacts", database.parent / "mlartifacts")
    assert relocate(database, old, "file:///new/mlartifacts") == 1
    with sqlite3.connect(database) as conn:
        assert dict(conn.execute("SELECT run_uuid, artifact_uri FROM runs")) == {
            "a": "file:///new/mlartifacts/a/artifacts", "b": "file:///old/mlartifacts-2/b",
            "c": "s3://bucket/file:///old/mlartifacts"}


def test_a_store_written_with_absolute_paths_is_still_read(original, tmp_path):
    """Stores written before paths were recorded relative hold absolute ones: they are used as they are."""
    from nas.registry import registered_checkpoint

    from nas.teacher import TeacherInfo

    ws, name, _, _ = original
    with Store(ws.database_url) as store:
        record = store.get_supernet(name)
    old_style = replace(record, checkpoint=str(ws.root / "supernet.pt"))
    elsewhere = Workspace(tmp_path / "unrelated")
    assert registered_checkpoint(old_style, elsewhere) == (ws.root / "supernet.pt").read_bytes()
    teacher = replace(TeacherInfo.from_dict(record.teacher), path=str(ws.root / "teacher.pt"))
    assert teacher.read_bytes(elsewhere) == (ws.root / "teacher.pt").read_bytes()
