"""The main job, end to end on tiny settings: every stage runs, and a second run reuses them all, in the same
workspace or in a copy of it."""
import shutil

from nas.demo import DemoSettings, run_demo
from nas.store import CandidateStatus, Store
from nas.workspace import Workspace


def test_quick_demo_end_to_end_and_rerun(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    settings = DemoSettings.quick(executor="local", progress=False, trials=4)
    lines: list[str] = []
    result = run_demo(workspace, settings, say=lines.append)
    summary = result["summary"]
    assert summary.state == "done" and summary.counts.done == 4
    assert summary.front.front and all(0 <= p.value <= 1 for p in summary.front.front)
    assert result["plot"].read_bytes()[:4] == b"\x89PNG"
    assert 0 <= result["segmenter_miou"] <= 1
    finals = result["finals"]
    assert finals and all(f.status.value == "done" and f.split == "val" and "miou" in f.teacher for f in finals)
    assert any("final models" in line for line in lines)
    assert any("mlflow ui" in line for line in lines) and any("ganas serve" in line for line in lines)
    with Store(workspace.database_url) as store:
        assert [s.name for s in store.list_supernets()] == ["demo-labels2scene"]
        done_before = {c.config: c.finished_at for c in store.candidates(result["search_id"], CandidateStatus.DONE)}

    again = run_demo(workspace, settings, say=lambda line: None)  # everything is reused: nothing retrains
    assert again["search_id"] == result["search_id"]
    assert [(f.id, f.finished_at) for f in again["finals"]] == [(f.id, f.finished_at) for f in finals]
    assert max(again["timings"].values()) < 10
    with Store(workspace.database_url) as store:
        assert {c.config: c.finished_at for c in store.candidates(result["search_id"], CandidateStatus.DONE)} == \
            done_before

    # a copy of the workspace, with the original gone, reads everything from itself (as `cp -a` then `rm -r`)
    copy = Workspace(tmp_path / "copy")
    shutil.copytree(workspace.root, copy.root, symlinks=True)
    shutil.rmtree(workspace.root)
    moved = run_demo(copy, settings, say=lambda line: None)
    assert moved["search_id"] == result["search_id"] and max(moved["timings"].values()) < 10
    assert [(f.id, f.finished_at) for f in moved["finals"]] == [(f.id, f.finished_at) for f in finals]
    assert not workspace.root.exists()
    with Store(copy.database_url) as store:
        assert store.get_supernet("demo-labels2scene").teacher["path"] == "demo/teacher/teacher.pt"
