"""Teacher-fidelity metrics in the search: the teacher recorded at registration is the reference; none, exit 2."""
import pytest

from nas.cli import main
from nas.orchestrator import Orchestrator, OrchestratorSettings
from nas.search_setup import SearchSetupError, create_search
from nas.store import CandidateStatus, Store
from nas.teacher import TeacherInfo
from nas.workspace import Workspace

LOCAL = OrchestratorSettings(workers=1, executor="local", progress=False, lease_seconds=60)


def test_search_scores_subnets_against_the_recorded_teacher(registered_supernet):
    ws = Workspace(registered_supernet.workspace)
    with Store(ws.database_url) as store:
        record = store.get_supernet(registered_supernet.name)
        assert "teacher-ssim" in record.metrics  # registered with a teacher
        search = create_search(store, registered_supernet.name, budgets=[80_000_000], metric="teacher-ssim",
                               strategy="random", trials=3, seed=2, batch_size=3)
        summary = Orchestrator(store, ws, search.id, LOCAL, log=lambda m: None).run()
        assert summary.state == "done" and summary.counts.done == 3
        done = list(store.candidates(search.id, CandidateStatus.DONE))
        assert all(-1 <= c.metrics["teacher-ssim"] < 1 for c in done)
        info = TeacherInfo.from_dict(record.teacher)
        assert all(f"sha256:{info.sha256}" in c.evaluator for c in done)  # which teacher is recorded
        # the teacher against itself: identical 8-bit images
        assert store.get_search(search.id).teacher["metrics"]["teacher-ssim"] == pytest.approx(1.0, abs=1e-6)


def _without_teacher(store, tmp_path):
    from nas.registry import register_supernet
    from supernet import create_generator, save_generator

    dataset = {"root": str(tmp_path), "paired": False, "size": 32, "search_split": "train2"}
    path = save_generator(create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=3), tmp_path / "s.pt",
                          kind="supernet", space="channels-16", dataset=dataset, method="omgd")
    return register_supernet(store, path, "no-teacher")


def test_teacher_metric_without_a_recorded_teacher_is_refused(registered_supernet, tmp_path, capsys):
    ws = Workspace(registered_supernet.workspace)
    with Store(ws.database_url) as store:
        record = _without_teacher(store, tmp_path)
        assert list(record.metrics) == ["fid", "kid"]  # no teacher: no teacher-fidelity metric
        before = len(store.list_searches())
        with pytest.raises(SearchSetupError, match="teacher-ssim compares subnets with the supernet's teacher, but "
                                                   "supernet 'no-teacher' records none; register it with --teacher"):
            create_search(store, "no-teacher", budgets=[60_000_000], metric="teacher-ssim")
    status = main(["search", "--workspace", str(ws.root), "start", "--supernet", "no-teacher", "--budget", "60M",
                   "--metric", "teacher-psnr", "--trials", "2"])
    err = capsys.readouterr().err
    assert status == 2 and "records none" in err and "Traceback" not in err
    with Store(ws.database_url) as store:
        assert len(store.list_searches()) == before


def test_teacher_perceptual_search_needs_vgg16_weights_where_workers_look(registered_supernet, tmp_path, monkeypatch):
    monkeypatch.setenv("GANAS_VGG16_WEIGHTS", str(tmp_path / "missing"))
    with Store(Workspace(registered_supernet.workspace).database_url) as store:
        with pytest.raises(SearchSetupError, match="teacher-perceptual: .*vgg16-397923af.pth"):
            create_search(store, registered_supernet.name, budgets=[80_000_000], metric="teacher-perceptual")


def test_a_teacher_metric_search_whose_teacher_moved_is_refused_before_it_runs(tmp_path):
    """Without its teacher a teacher-fidelity search cannot score anything: refused in one error, the search as it
    was (not run without the reference, every worker failing)."""
    from nas.store import SearchState
    from supernet.errors import CheckpointError

    from .conftest import build_registered_supernet

    fixture = build_registered_supernet(tmp_path)
    ws = Workspace(fixture.workspace)
    with Store(ws.database_url) as store:
        search = create_search(store, fixture.name, budgets=[80_000_000], metric="teacher-ssim", strategy="random",
                               trials=2, seed=2, batch_size=3)
        fixture.teacher.rename(tmp_path / "moved.pt")
        with pytest.raises(CheckpointError, match="teacher-ssim compares candidates with the supernet.s teacher") as \
                refused:
            Orchestrator(store, ws, search.id, LOCAL, log=lambda m: None).run()
        assert "does not exist" in str(refused.value) or "moved" in str(refused.value), str(refused.value)
        assert store.get_search(search.id).state == SearchState.CREATED
        assert store.count_candidates(search.id).total == 0
