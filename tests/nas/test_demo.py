"""The main job, end to end on tiny settings: every stage runs, and a second run reuses them all."""
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
