"""The REST service: every endpoint against a workspace filled through the Store API, the launcher
with a fake orchestrator command, and access control (the web app with the dashboard: tests/webapp)."""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import warnings

import numpy as np
import pytest
from PIL import Image

from nas.pareto import hypervolume, pareto_front
from nas.service import create_app
from nas.service.auth import COOKIE, TokenAuth, check_binding, is_loopback, resolve_token
from nas.service.errors import OrchestratorRunningError, TokenRequiredError
from nas.service.launcher import LaunchOptions, OrchestratorLauncher, orchestrator_command
from nas.store import Store
from nas.workspace import Workspace

with warnings.catch_warnings():  # starlette 1.x asks for httpx2, which is not installed; httpx works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

BASE_URL = "http://127.0.0.1:8765"  # a Host the service answers by default (testserver is not one)
JSON_BODY = {"Content-Type": "application/json"}  # what a state-changing API request must say, body or not
SHA = "ab" * 32
TOKEN = "s3cret-token-for-tests-0123"
M = 1_000_000
# (config, MACs, fid): B dominates C, D dominates E; the front is A, B, D, F
DONE = [("8_8_8_8_8_8_8_8", 100 * M, 80.0), ("12_8_8_8_8_8_8_8", 150 * M, 60.0), ("16_8_8_8_8_8_8_8", 200 * M, 70.0),
        ("8_12_8_8_8_8_8_8", 300 * M, 50.0), ("8_16_8_8_8_8_8_8", 300 * M, 55.0), ("8_8_12_8_8_8_8_8", 450 * M, 45.0)]
FRONT = ["8_8_8_8_8_8_8_8", "12_8_8_8_8_8_8_8", "8_12_8_8_8_8_8_8", "8_8_12_8_8_8_8_8"]
FAILED, INFEASIBLE, QUEUED = "8_8_16_8_8_8_8_8", "16_16_16_16_16_16_16_16", "8_8_8_12_8_8_8_8"
BUDGETS = [250 * M, 500 * M]


def local_client(app) -> TestClient:
    """A test client that reaches the app as a browser or script on this machine would."""
    return TestClient(app, base_url=BASE_URL)


def kill_launched(app) -> None:
    """End the stand-in processes the app's launcher started (a fixture's teardown)."""
    for info in app.state.ganas.launcher.launches().values():
        process = app.state.ganas.launcher.process(info.search_id)
        process.kill()
        process.wait()


def fill_workspace(root: Path, checkpoint: bytes | None = None, plan: bool = False) -> tuple[Workspace, int]:
    """One supernet and one search: 6 done, 1 failed, 1 infeasible, 1 queued candidate.

    The supernet's checkpoint is nowhere, unless its ``checkpoint`` bytes are given (written to ``root/sn.pt``).
    With ``plan`` the search has the plan ``ganas search start`` writes, over an aligned dataset folder with a
    val split (empty: nothing here reads its images).
    """
    from foundation.hashing import bytes_sha256

    workspace = Workspace.resolve(root)
    location, sha = "/nowhere/sn.pt", SHA
    if checkpoint is not None:
        workspace.ensure()
        (workspace.root / "sn.pt").write_bytes(checkpoint)
        location, sha = str(workspace.root / "sn.pt"), bytes_sha256(checkpoint)
    with Store(workspace.database_url) as store:
        store.register_supernet("tiny", architecture="mobile_resnet", space="channels-16", checkpoint=location,
                                checkpoint_sha256=sha, hparams={"ngf": 16, "n_blocks": 3},
                                dataset={"root": str(root), "size": 32, "paired": True, "search_split": "train2"},
                                metrics=["fid", "kid", "psnr", "ssim"])
        search = store.create_search("tiny", budgets=BUDGETS, objectives=["fid"], strategy="random", trials=10,
                                     seed=1, max_attempts=1, plan=_plan(root) if plan else None)
        store.add_candidates(search.id, [(c, macs, 1000 + i) for i, (c, macs, _) in enumerate(DONE)]
                             + [(FAILED, 120 * M, 900), (INFEASIBLE, 900 * M, 5000, "infeasible", None, "over budget"),
                                (QUEUED, 250 * M, 1200)])
        leased = {c.config: c for c in store.lease_candidates(search.id, "worker-1", 7, 60)}
        for config, _, fid in DONE:
            store.complete_candidate(leased[config].id, "worker-1", {"fid": fid, "kid": fid / 1000},
                                     "fid/inception@sha256:0123", 1.25)
        store.fail_candidate(leased[FAILED].id, "worker-1", "RuntimeError: out of memory")
    return workspace, search.id


def _plan(root: Path) -> dict:
    from nas.search_setup import EvaluationSpec, SearchPlan

    for split in ("train", "val"):
        (root / "data" / split).mkdir(parents=True, exist_ok=True)
    spec = EvaluationSpec(str(root / "data"), "aligned", "AtoB", "train2", 32, ("fid",))
    return SearchPlan(spec, 8, (32, 32)).to_dict()


# The teacher of `with_teacher`: 5G MACs, 20,000 parameters; on the search split fid 40, kid 0.04
TEACHER_MACS, TEACHER_PARAMS, TEACHER_FID = 5000 * M, 20_000, 40.0
# Final models of `with_teacher`: (config, budget, status); the done one's figures on val are FINAL_FIGURES
FINALS = [(FRONT[1], 250 * M, "done"), (FRONT[3], 500 * M, "failed"), (FRONT[0], None, "queued")]
FINAL_FIGURES = {"before": {"fid": 70.0}, "after": {"fid": 50.0}, "teacher": {"fid": 45.0},
                 "latency_ms": 4.0, "teacher_latency_ms": 30.0}
FINAL_FILES = {"checkpoint": b"checkpoint-bytes", "onnx": b"onnx-bytes"}  # no pt2 recorded


def add_teacher(workspace: Workspace, search_id: int, measured: bool = True) -> None:
    """Give the supernet of `fill_workspace` a teacher (a real file, so its hash checks), the search its figures."""
    from foundation.hashing import bytes_sha256

    teacher = workspace.root / "teacher.pt"
    teacher.write_bytes(b"teacher-weights")
    info = {"path": str(teacher), "sha256": bytes_sha256(b"teacher-weights"), "architecture": "resnet",
            "hparams": {"ngf": 64}, "reference_arch": None, "macs": TEACHER_MACS, "params": TEACHER_PARAMS,
            "size": [32, 32]}
    with Store(workspace.database_url) as store:
        known = store.get_supernet("tiny")
        store.register_supernet("tiny", architecture=known.architecture, space=known.space,
                                checkpoint=known.checkpoint, checkpoint_sha256=known.checkpoint_sha256,
                                hparams=dict(known.hparams), teacher=info)
        if measured:
            store.set_search_teacher(search_id, {"fid": TEACHER_FID, "kid": 0.04}, "fid/inception@sha256:0123",
                                     "train2")


def add_finals(workspace: Workspace, search_id: int) -> None:
    """The FINALS of a search: one done (files written for FINAL_FILES), one failed, one queued."""
    from nas.store import NewFinal

    with Store(workspace.database_url) as store:
        macs = {c.config: c for c in store.candidates(search_id)}
        store.add_finals(search_id, [NewFinal(config, macs[config].macs, macs[config].params, 200, budget)
                                     for config, budget, _ in FINALS])
        leased = {f.config: f for f in store.lease_finals(search_id, "final-w0", 2, 60)}
        done = FINALS[0][0]
        files = {}
        for kind, data in FINAL_FILES.items():
            path = workspace.final_dir(search_id, done) / {"checkpoint": "subnet.pt", "onnx": "subnet.onnx"}[kind]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            files[kind] = str(path.relative_to(workspace.root))
        store.complete_final(leased[done].id, "final-w0", evaluator="fid/inception@sha256:0123", split="val",
                             files=files, export_errors={"onnx": 1e-6}, seconds=12.5, **FINAL_FIGURES)
        store.set_final_model(leased[done].id, "models:/ganas-tiny/1")
        store.fail_final(leased[FINALS[1][0]].id, "final-w0", "RuntimeError: export failed")


@pytest.fixture
def filled(tmp_path):
    return fill_workspace(tmp_path / "ws")


@pytest.fixture
def with_teacher(filled):
    """`filled` with a teacher (measured on the search split) and FINALS."""
    add_teacher(*filled)
    add_finals(*filled)
    return filled


@pytest.fixture
def client(filled):
    with local_client(create_app(filled[0])) as test_client:
        yield test_client


def sleeper(search_id: int, workspace: Workspace, options: LaunchOptions) -> list[str]:
    """A fake orchestrator: says which search it drives and with how many workers, then sleeps."""
    code = "import sys, time; print('orchestrator for search', *sys.argv[1:], flush=True); time.sleep(5)"
    return [sys.executable, "-c", code, str(search_id), f"workers={options.workers}"]


@pytest.fixture
def fake_client(filled):
    app = create_app(filled[0], command=sleeper)
    with local_client(app) as test_client:
        yield test_client
    kill_launched(app)


# -- supernets ---------------------------------------------------------------------------------------------
def test_supernets_list_and_get(client):
    listed = client.get("/api/supernets").json()
    assert [s["name"] for s in listed] == ["tiny"]
    one = client.get("/api/supernets/tiny").json()
    assert one == listed[0]
    assert one["space"] == "channels-16" and one["checkpoint_sha256"] == SHA and one["hparams"] == {"ngf": 16,
                                                                                                     "n_blocks": 3}
    missing = client.get("/api/supernets/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == "NotFoundError" and "registered: tiny" in missing.json()["detail"]


def test_register_supernet_from_checkpoint(client, tmp_path):
    from supernet import create_generator
    from foundation.hashing import file_sha256
    from supernet.checkpoint import save_generator

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    generator = create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=3)
    dataset = {"root": str(tmp_path), "size": 32, "paired": True, "labelled": False, "search_split": "train2"}
    path = save_generator(generator, tmp_path / "run" / "supernet.pt", kind="supernet", space="channels-16",
                          dataset=dataset)
    response = client.post("/api/supernets", json={"checkpoint": str(path), "name": "edges-16"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "edges-16" and body["architecture"] == "mobile_resnet"
    assert body["checkpoint_sha256"] == file_sha256(path) and body["metrics"] == ["fid", "kid", "psnr", "ssim"]
    assert [s["name"] for s in client.get("/api/supernets").json()] == ["tiny", "edges-16"]
    teacher = save_generator(create_generator("mobile_resnet", ngf=16, n_blocks=3), tmp_path / "t.pt", kind="teacher")
    refused = client.post("/api/supernets", json={"checkpoint": str(teacher)})
    assert refused.status_code == 400 and "not a supernet checkpoint" in refused.json()["detail"]
    absent = client.post("/api/supernets", json={"checkpoint": str(tmp_path / "absent.pt")})
    assert absent.status_code == 400 and "does not exist" in absent.json()["detail"]
    assert client.post("/api/supernets", json={"name": "x"}).status_code == 422


# -- searches ----------------------------------------------------------------------------------------------
def test_create_search_validates(client, inception_weights):
    made = client.post("/api/searches", json={"supernet": "tiny", "budgets": "1G,500M", "metric": "fid",
                                              "strategy": "random", "trials": 7, "seed": 3})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["state"] == "created" and body["budgets"] == [500 * M, 1000 * M] and body["budgets_text"] == ["500M",
                                                                                                              "1G"]
    assert body["objectives"] == [{"metric": "fid", "direction": "minimize"}, {"metric": "macs",
                                                                                "direction": "minimize"}]
    assert body["trials"] == 7 and body["seed"] == 3
    assert [s["id"] for s in client.get("/api/searches").json()] == [1, body["id"]]
    assert [s["id"] for s in client.get("/api/searches?state=created&supernet=tiny").json()] == [1, body["id"]]
    assert client.get("/api/searches?state=running").json() == []
    cases = [({"supernet": "nope", "budgets": "1G", "trials": 3}, 404, "no supernet 'nope'"),
             ({"supernet": "tiny", "budgets": "2Q", "trials": 3}, 422, "is not a number"),
             ({"supernet": "tiny", "budgets": "1K", "trials": 3}, 422, "below the smallest subnet"),
             ({"supernet": "tiny", "budgets": "1G", "trials": 3, "metric": "miou"}, 422, "not miou"),
             ({"supernet": "tiny", "budgets": "1G", "trials": 3, "strategy": "greedy"}, 422, "unknown strategy"),
             ({"supernet": "tiny", "budgets": "1G", "trials": 0}, 422, "trials"),
             ({"supernet": "tiny", "budgets": "1G", "trials": 3, "workerz": 2}, 422, "workerz"),
             ({"supernet": "tiny", "budgets": "1G", "trials": 3, "metric_options": {"kid_size": 2}}, 422,
              "unknown metric option(s) kid_size")]
    for request, status, message in cases:
        response = client.post("/api/searches", json=request)
        assert response.status_code == status, (request, response.text)
        assert message in response.json()["detail"], (request, response.json())
    shape = client.post("/api/searches", json={"supernet": "tiny", "budgets": "1G", "trials": "many"}).json()
    assert shape["error"] == "RequestValidationError" and shape["errors"][0]["loc"] == ["body", "trials"]
    assert len(client.get("/api/searches").json()) == 2  # nothing written by a refused request
    assert client.get("/api/searches?state=sleeping").status_code == 400


def test_search_request_fields_are_create_search_arguments():
    import inspect

    from nas.search_setup import create_search
    from nas.service.schemas import SearchCreate

    accepted = set(inspect.signature(create_search).parameters) - {"store"}
    assert set(SearchCreate.model_fields) <= accepted, set(SearchCreate.model_fields) - accepted


def test_search_detail_counts_best_and_hypervolume(client, filled):
    _, search_id = filled
    body = client.get(f"/api/searches/{search_id}").json()
    assert body["search"]["state"] == "created" and body["search"]["budgets_text"] == ["250M", "500M"]
    assert body["counts"] == {"queued": 1, "leased": 0, "done": 6, "failed": 1, "infeasible": 1, "total": 9}
    assert body["finished"] == 8 and body["progress"] == pytest.approx(0.8)
    assert body["metric"] == "fid" and body["direction"] == "minimize" and body["front_size"] == 4
    best = {row["budget"]: row["candidate"]["config"] for row in body["best_per_budget"]}
    assert best == {250 * M: "12_8_8_8_8_8_8_8", 500 * M: "8_8_12_8_8_8_8_8"}
    # by hand, with the reference point of `ganas search status` (largest budget x 1.0001, 1.1 x worst fid):
    # the strips A, B, D, F open under (500.05M, 88)
    strips = [(500.05 - 100) * (88 - 80), (500.05 - 150) * (80 - 60), (500.05 - 300) * (60 - 50), (500.05 - 450) * 5]
    assert body["hypervolume"] == pytest.approx(sum(strips) * M)
    assert body["orchestrator"] is None
    assert client.get("/api/searches/99").status_code == 404
    assert client.get(f"/api/searches/{search_id}?metric=psnr").status_code == 400


def test_front_matches_nas_pareto(client, filled):
    workspace, search_id = filled
    front = client.get(f"/api/searches/{search_id}/front").json()
    assert [p["config"] for p in front["front"]] == FRONT
    assert [p["config"] for p in front["points"]] == [c for c, _, _ in DONE]
    points = [[p["macs"], p["value"]] for p in front["points"]]
    expected = pareto_front(points, ["minimize", "minimize"])
    assert [i for i, p in enumerate(front["points"]) if p["on_front"]] == expected
    assert front["hypervolume"] == pytest.approx(hypervolume(points, [500 * M * 1.0001, 88.0]))
    assert client.get(f"/api/searches/{search_id}/front?metric=kid").status_code == 400  # not an objective
    from nas.summary import summarize

    with Store(workspace.database_url) as store:  # the same figures as `ganas search status`
        cli = summarize(store, search_id)
    assert [p.config for p in cli.front.front] == FRONT and front["hypervolume"] == cli.hypervolume



def test_front_of_a_random_search_equals_nas_pareto(tmp_path):
    workspace = Workspace.resolve(tmp_path)
    rng = random.Random(7)
    with Store(workspace.database_url) as store:
        store.register_supernet("s", architecture="unet", space="unet64-channels-32", checkpoint="c",
                                checkpoint_sha256=SHA)
        search = store.create_search("s", budgets=[10**9], objectives=["psnr:maximize", "macs"], strategy="random",
                                     trials=40)
        configs = [(f"{i}_1", rng.randrange(10**8, 10**9), 1) for i in range(40)]
        store.add_candidates(search.id, configs)
        for record in store.lease_candidates(search.id, "w", 40, 60):
            store.complete_candidate(record.id, "w", {"psnr": round(rng.uniform(15, 30), 1)}, "psnr", 0.1)
    with local_client(create_app(workspace)) as client:
        front = client.get(f"/api/searches/{search.id}/front").json()
    assert front["metric"] == "psnr" and front["direction"] == "maximize"  # MACs is the x axis, not the metric
    points = [[p["macs"], p["value"]] for p in front["points"]]
    on_front = {front["points"][i]["config"] for i in pareto_front(points, ["minimize", "maximize"])}
    assert {p["config"] for p in front["front"]} == on_front and len(on_front) >= 2
    assert [p["macs"] for p in front["front"]] == sorted(p["macs"] for p in front["front"])


# -- candidates and samples ----------------------------------------------------------------------------------
def test_candidates_paged_and_filtered(client, filled):
    _, search_id = filled
    every = client.get(f"/api/searches/{search_id}/candidates").json()
    assert every["total"] == 9 and [c["order"] for c in every["items"]] == list(range(9))
    page = client.get(f"/api/searches/{search_id}/candidates?offset=2&limit=3").json()
    assert [c["config"] for c in page["items"]] == [c["config"] for c in every["items"][2:5]]
    assert (page["offset"], page["limit"], page["total"]) == (2, 3, 9)
    failed = client.get(f"/api/searches/{search_id}/candidates?status=failed").json()
    assert failed["total"] == 1 and failed["items"][0]["config"] == FAILED
    assert failed["items"][0]["error"] == "RuntimeError: out of memory"
    done = client.get(f"/api/searches/{search_id}/candidates?status=done").json()["items"]
    assert {c["config"]: c["metrics"]["fid"] for c in done} == {c: fid for c, _, fid in DONE}
    assert done[0]["macs_text"] == "100M" and done[0]["evaluator"] == "fid/inception@sha256:0123"
    assert client.get(f"/api/searches/{search_id}/candidates?status=lost").status_code == 422
    assert client.get(f"/api/searches/{search_id}/candidates?limit=5000").status_code == 422
    one = client.get(f"/api/searches/{search_id}/candidates/{FRONT[1]}").json()
    assert one["metrics"] == {"fid": 60.0, "kid": 0.06} and one["eval_seconds"] == 1.25
    assert client.get(f"/api/searches/{search_id}/candidates/1_2_3").status_code == 404


def test_sample_image(client, filled):
    workspace, search_id = filled
    url = f"/api/searches/{search_id}/candidates/{FRONT[0]}/sample.png"
    missing = client.get(url)
    assert missing.status_code == 404 and "no sample image" in missing.json()["detail"]
    folder = workspace.samples_dir(search_id)
    folder.mkdir(parents=True)
    pixels = np.arange(4 * 8 * 3, dtype=np.uint8).reshape(4, 8, 3)
    Image.fromarray(pixels).save(folder / f"{FRONT[0]}.png")
    found = client.get(url)
    assert found.status_code == 200 and found.headers["content-type"] == "image/png"
    assert found.content == (folder / f"{FRONT[0]}.png").read_bytes()
    (workspace.root / "secret.png").write_bytes(b"x")
    for config in ("..%2F..%2Fsecret", "..", "nope"):
        assert client.get(f"/api/searches/{search_id}/candidates/{config}/sample.png").status_code == 404


# -- the teacher as the reference --------------------------------------------------------------------------------
def test_supernet_shows_its_teacher(client, filled):
    assert client.get("/api/supernets/tiny").json()["teacher"] is None
    add_teacher(*filled)
    teacher = client.get("/api/supernets/tiny").json()["teacher"]
    assert teacher["macs"] == TEACHER_MACS and teacher["macs_text"] == "5G" and teacher["params"] == TEACHER_PARAMS
    assert teacher["architecture"] == "resnet" and teacher["path"] == str(filled[0].root / "teacher.pt")
    assert client.get("/api/supernets").json()[0]["teacher"] == teacher


def test_search_detail_compares_every_best_candidate_with_the_teacher(client, filled):
    workspace, search_id = filled
    before = client.get(f"/api/searches/{search_id}").json()
    assert before["teacher"] is None and before["teacher_value"] is None
    assert "records no teacher" in before["teacher_note"]
    assert all(row["candidate"]["vs_teacher"] is None for row in before["best_per_budget"])
    add_teacher(workspace, search_id, measured=False)
    unmeasured = client.get(f"/api/searches/{search_id}").json()
    assert unmeasured["teacher"]["macs"] == TEACHER_MACS and unmeasured["teacher"]["metrics"] == {}
    assert "not been measured" in unmeasured["teacher_note"] and unmeasured["teacher_value"] is None
    vs = unmeasured["best_per_budget"][0]["candidate"]["vs_teacher"]
    assert vs["macs_ratio"] == pytest.approx(5000 / 150) and vs["metrics"] == {}  # the cost is known already
    with Store(workspace.database_url) as store:
        store.set_search_teacher(search_id, {"fid": TEACHER_FID, "kid": 0.04}, "fid/inception@sha256:0123", "train2")
    body = client.get(f"/api/searches/{search_id}").json()
    assert body["teacher_note"] is None and body["teacher_value"] == TEACHER_FID
    assert body["teacher"]["metrics"] == {"fid": 40.0, "kid": 0.04} and body["teacher"]["split"] == "train2"
    best = {row["budget"]: row["candidate"] for row in body["best_per_budget"]}
    # 250M: 12_8_8_8_8_8_8_8 (150M MACs, 1001 params, fid 60); 500M: 8_8_12_8_8_8_8_8 (450M, 1005, fid 45)
    for budget, macs, params, fid in ((250 * M, 150, 1001, 60.0), (500 * M, 450, 1005, 45.0)):
        vs = best[budget]["vs_teacher"]
        assert vs["macs_ratio"] == pytest.approx(5000 / macs) and vs["params_ratio"] == pytest.approx(20_000 / params)
        assert vs["metrics"]["fid"] == pytest.approx({"value": fid, "teacher": 40.0, "ratio": fid / 40,
                                                      "difference": fid - 40})
        assert vs["metrics"]["kid"]["ratio"] == pytest.approx((fid / 1000) / 0.04)


def test_front_and_candidates_compare_with_the_teacher(client, filled):
    workspace, search_id = filled
    add_teacher(workspace, search_id)
    front = client.get(f"/api/searches/{search_id}/front").json()
    assert front["teacher_value"] == TEACHER_FID and front["teacher"]["macs_text"] == "5G"
    by_config = {p["config"]: p["vs_teacher"] for p in front["front"]}
    for config, macs, fid in DONE:
        if config in by_config:
            assert by_config[config]["macs_ratio"] == pytest.approx(5000 * M / macs)
            assert set(by_config[config]["metrics"]) == {"fid"}  # the front's metric
            assert by_config[config]["metrics"]["fid"]["difference"] == pytest.approx(fid - 40)
    assert all(p["vs_teacher"] is not None for p in front["points"])
    one = client.get(f"/api/searches/{search_id}/candidates/{FRONT[0]}").json()["vs_teacher"]
    assert one["macs_ratio"] == pytest.approx(50.0) and one["metrics"]["fid"]["ratio"] == pytest.approx(2.0)
    page = client.get(f"/api/searches/{search_id}/candidates?status=failed").json()["items"][0]["vs_teacher"]
    assert page["macs_ratio"] == pytest.approx(5000 / 120) and page["metrics"] == {}  # a failed one has no metric


def test_comparisons_with_the_teacher_by_hand():
    from nas.reference import compare_metrics, times_fewer

    assert times_fewer(56_800 * M, 2_670 * M) == pytest.approx(21.27, abs=0.01)  # GAN Compression's CycleGAN
    assert times_fewer(5000 * M, 0) is None and times_fewer(None, 100) is None
    compared = compare_metrics({"psnr": 20.0, "ssim": 0.0, "fid": 30.0}, {"psnr": 25.0, "ssim": 0.0})
    assert set(compared) == {"psnr", "ssim"}  # the teacher has no fid: nothing to compare
    assert (compared["psnr"].ratio, compared["psnr"].difference) == (pytest.approx(0.8), -5.0)
    assert compared["ssim"].ratio is None and compared["ssim"].difference == 0.0  # no ratio to a zero


# -- final models ------------------------------------------------------------------------------------------------
def test_finals_list_with_ratios_against_the_teacher(client, with_teacher):
    workspace, search_id = with_teacher
    finals = client.get(f"/api/searches/{search_id}/finals").json()
    assert [(f["config"], f["budget"], f["status"]) for f in finals] == FINALS
    done, failed, queued = finals
    assert done["budget_text"] == "250M" and done["macs_text"] == "150M" and done["split"] == "val"
    assert (done["before"], done["after"], done["teacher"]) == ({"fid": 70.0}, {"fid": 50.0}, {"fid": 45.0})
    assert done["vs_teacher"]["macs_ratio"] == pytest.approx(5000 / 150)
    assert done["vs_teacher"]["metrics"]["fid"] == pytest.approx({"value": 50.0, "teacher": 45.0,
                                                                  "ratio": 50 / 45, "difference": 5.0})
    assert done["speedup"] == pytest.approx(30 / 4) and done["model_uri"] == "models:/ganas-tiny/1"
    assert set(done["files"]) == {"checkpoint", "onnx"} and done["export_errors"] == {"onnx": 1e-6}
    assert failed["error"] == "RuntimeError: export failed" and failed["speedup"] is None and failed["files"] == {}
    assert queued["budget"] is None and queued["budget_text"] is None and queued["after"] == {}
    assert client.get("/api/searches/99/finals").status_code == 404


def test_final_files_download_only_what_the_store_records(client, with_teacher):
    workspace, search_id = with_teacher
    config = FINALS[0][0]
    base = f"/api/searches/{search_id}/finals/{config}/files"
    for kind, data in FINAL_FILES.items():
        response = client.get(f"{base}/{kind}")
        assert response.status_code == 200 and response.content == data
        assert response.headers["content-type"] == "application/octet-stream"
    assert f'filename="search{search_id}-{config}.onnx"' in client.get(f"{base}/onnx").headers["content-disposition"]
    (workspace.final_dir(search_id, config) / "subnet.pt2").write_bytes(b"not recorded")
    missing = client.get(f"{base}/pt2")
    assert missing.status_code == 404 and "has no pt2 file" in missing.json()["detail"]
    unknown = client.get(f"{base}/weights")
    assert unknown.status_code == 404 and "kinds: checkpoint, onnx, pt2" in unknown.json()["detail"]
    (workspace.root / "secret.txt").write_text("secret")
    for url in (f"/api/searches/{search_id}/finals/{FINALS[1][0]}/files/onnx",  # failed: no file
                f"/api/searches/{search_id}/finals/1_2_3/files/onnx",  # not a final model
                f"/api/searches/{search_id}/finals/..%2F..%2Fsecret.txt/files/onnx",
                f"/api/searches/{search_id}/finals/{config}/files/..%2F..%2Fsecret.txt",
                f"/api/searches/99/finals/{config}/files/onnx"):
        response = client.get(url)
        assert response.status_code == 404 and "secret" not in response.text, url
    (workspace.final_dir(search_id, config) / "subnet.onnx").unlink()
    gone = client.get(f"{base}/onnx")
    assert gone.status_code == 404 and "moved or deleted" in gone.json()["detail"]


def test_final_files_outside_the_workspace_are_never_served(client, with_teacher, tmp_path):
    workspace, search_id = with_teacher
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(b"outside")
    with Store(workspace.database_url) as store:  # a store edited by hand: paths that leave the workspace
        from nas.store import NewFinal

        store.add_finals(search_id, [NewFinal(FRONT[2], 300 * M, 1003, 10)])
        final = store.lease_finals(search_id, "w", 1, 60)[0]
        store.complete_final(final.id, "w", before={}, after={}, teacher={}, evaluator="e", split="val",
                             latency_ms=None, teacher_latency_ms=None, seconds=1.0, export_errors={},
                             files={"onnx": "../outside.onnx", "pt2": str(outside), "checkpoint": "link.pt"})
    (workspace.root / "link.pt").symlink_to(outside)
    for kind in ("onnx", "pt2", "checkpoint"):
        assert client.get(f"/api/searches/{search_id}/finals/{FRONT[2]}/files/{kind}").status_code == 404


def _done(workspace: Workspace, search_id: int) -> None:
    with Store(workspace.database_url) as store:
        store.set_search_state(search_id, "running")
        store.set_search_state(search_id, "done")


@pytest.fixture
def finalizable(tmp_path):
    """A done search whose supernet checkpoint and teacher are real files, with a fake-process client."""
    workspace, search_id = fill_workspace(tmp_path / "ws", checkpoint=b"supernet-weights", plan=True)
    add_teacher(workspace, search_id)
    _done(workspace, search_id)
    app = create_app(workspace, command=sleeper)
    with local_client(app) as client:
        yield workspace, search_id, client
    kill_launched(app)


def _store_state(workspace: Workspace, search_id: int):
    with Store(workspace.database_url) as store:
        search = store.get_search(search_id)
        return search.state, search.owner, store.finals(search_id), sorted(p.name for p in workspace.root.rglob("*"))


def test_finalize_refuses_bad_requests_and_writes_nothing(finalizable):
    workspace, search_id, client = finalizable
    url = f"/api/searches/{search_id}/finalize"
    cases = [(url, {"steps": 0}, 422, "steps must be a positive integer (at most 2,147,483,647), got 0"),
             (url, {"steps": 10, "workers": 0}, 422, "workers must be a positive integer (at most 1,024), got 0"),
             (url, {"steps": 10, "configs": [FAILED]}, 400, f"{FAILED} is not a done candidate"),
             (url, {"steps": 10, "configs": ["1_2_3"]}, 400, "1_2_3 is not a done candidate"),
             (url, {"steps": 10, "budgets": ["50M"]}, 400, "no done candidate of search 1 fits 50M MACs"),
             (url, {"steps": 10, "budgets": "2Q"}, 422, "is not a number"),
             (url, {"steps": 10, "executor": "slurm"}, 422, "unknown executor 'slurm'"),
             (url, {"steps": 10, "recipe": "distil"}, 422, "recipe 'distil' is not a fine-tuning recipe"),
             (url, {"steps": 10, "epochs": 3}, 422, "epochs"),
             ("/api/searches/99/finalize", {"steps": 10}, 404, "99")]
    before = _store_state(workspace, search_id)
    for path, body, status, message in cases:
        response = client.post(path, json=body)
        assert response.status_code == status, (body, response.text)
        assert message in response.json()["detail"], (body, response.json())
    assert _store_state(workspace, search_id) == before


def test_finalize_refuses_a_running_search_and_a_changed_teacher(finalizable):
    workspace, search_id, client = finalizable
    url = f"/api/searches/{search_id}/finalize"
    with Store(workspace.database_url) as store:
        store.claim_search(search_id, "orchestrator-elsewhere", ttl_seconds=60)
    held = client.post(url, json={"steps": 10})
    assert held.status_code == 409 and "orchestrator-elsewhere" in held.json()["detail"]
    with Store(workspace.database_url) as store:
        store.release_search(search_id, "orchestrator-elsewhere")
    (workspace.root / "teacher.pt").write_bytes(b"another teacher")
    before = _store_state(workspace, search_id)
    changed = client.post(url, json={"steps": 10})
    assert changed.status_code == 400 and "changed since the supernet was registered" in changed.json()["detail"]
    (workspace.root / "teacher.pt").unlink()
    missing = client.post(url, json={"steps": 10})
    assert missing.status_code == 400 and "is missing" in missing.json()["detail"]
    (workspace.root / "sn.pt").write_bytes(b"retrained")
    add_teacher(workspace, search_id)
    moved = client.post(url, json={"steps": 10})
    assert moved.status_code == 400 and "no longer the registered file" in moved.json()["detail"]
    assert _store_state(workspace, search_id)[:3] == before[:3]
    assert not (workspace.search_dir(search_id) / "finalize.log").exists()


def test_finalize_needs_a_teacher_and_a_finished_search(client, filled):
    workspace, search_id = filled
    created = client.post(f"/api/searches/{search_id}/finalize", json={"steps": 10})
    assert created.status_code == 400
    assert "is created; finalize it once it is done or paused" in created.json()["detail"]
    with Store(workspace.database_url) as store:
        store.set_search_state(search_id, "running")  # no orchestrator holds it (it died): still refused
    running = client.post(f"/api/searches/{search_id}/finalize", json={"steps": 10})
    assert running.status_code == 400 and "is running" in running.json()["detail"]
    with Store(workspace.database_url) as store:
        store.set_search_state(search_id, "done")
    none = client.post(f"/api/searches/{search_id}/finalize", json={"steps": 10})
    assert none.status_code == 400 and "records no teacher" in none.json()["detail"]


def test_finalize_launches_ganas_search_finalize_once(finalizable):
    workspace, search_id, client = finalizable
    started = client.post(f"/api/searches/{search_id}/finalize", json={"steps": 20, "budgets": ["250M"],
                                                                        "configs": [FRONT[0]], "workers": 3})
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["steps"] == 20 and [(c["config"], c["budget"]) for c in body["choices"]] == [(FRONT[0], None),
                                                                                             (FRONT[1], 250 * M)]
    finalizer = body["finalizer"]
    assert finalizer["job"] == "finalizer" and finalizer["running"] and finalizer["command"][-1] == "workers=3"
    log = workspace.search_dir(search_id) / "finalize.log"
    assert finalizer["log_path"] == str(log)
    _wait_for(lambda: f"orchestrator for search {search_id} workers=3" in log.read_text())
    again = client.post(f"/api/searches/{search_id}/finalize", json={"steps": 20})
    assert again.status_code == 409 and "already has a finalizer running" in again.json()["detail"]
    resume = client.post(f"/api/searches/{search_id}/resume", headers=JSON_BODY)
    assert resume.status_code == 409  # done: and a finalizer runs anyway
    assert client.get(f"/api/searches/{search_id}").json()["orchestrator"]["job"] == "finalizer"


def test_finalize_command_is_ganas_search_finalize(tmp_path):
    from nas.cli import build_parser
    from nas.service.launcher import FinalizeOptions

    workspace = Workspace.resolve(tmp_path)
    options = FinalizeOptions(steps=30, budgets=(250 * M, 500 * M), front=True, configs=(FRONT[0],), workers=4,
                              executor="local", ray_address="10.0.0.1:6379", threads_per_worker=3, recipe="online")
    command = orchestrator_command(7, workspace, options)
    assert command[:3] == [sys.executable, "-m", "nas.cli"]
    args = build_parser().parse_args(command[3:])
    assert (args.command, args.search_command, args.search_id) == ("search", "finalize", 7)
    assert Workspace.resolve(args.workspace) == workspace and args.quiet
    assert (args.steps, args.budget, args.front, args.config) == (30, [str(250 * M), str(500 * M)], True, [FRONT[0]])
    assert (args.workers, args.executor, args.ray_address, args.threads_per_worker) == (4, "local", "10.0.0.1:6379", 3)
    assert args.recipe == "online"
    plain = build_parser().parse_args(orchestrator_command(7, workspace, FinalizeOptions(steps=5))[3:])
    assert (plain.budget, plain.front, plain.config, plain.workers, plain.executor) == ([], False, [], 2, "ray")
    assert plain.threads_per_worker is None


# -- actions and the launcher ----------------------------------------------------------------------------------
def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_start_pause_resume_cancel(fake_client, filled):
    workspace, search_id = filled
    bad = fake_client.post(f"/api/searches/{search_id}/start", json={"workers": 2, "executor": "slurm"})
    assert bad.status_code == 422 and "unknown executor 'slurm'" in bad.json()["detail"]
    started = fake_client.post(f"/api/searches/{search_id}/start", json={"workers": 3})
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["search"]["state"] == "running" and body["orchestrator"]["running"] is True
    assert body["orchestrator"]["command"][-2:] == [str(search_id), "workers=3"]
    log = workspace.search_dir(search_id) / "orchestrator.log"
    assert body["orchestrator"]["log_path"] == str(log)
    _wait_for(lambda: f"orchestrator for search {search_id} workers=3" in log.read_text())
    again = fake_client.post(f"/api/searches/{search_id}/resume", headers=JSON_BODY)
    assert again.status_code == 409 and "already has an orchestrator running" in again.json()["detail"]
    not_created = fake_client.post(f"/api/searches/{search_id}/start", headers=JSON_BODY)
    assert not_created.status_code == 409  # not created any more
    detail = fake_client.get(f"/api/searches/{search_id}").json()
    assert detail["orchestrator"]["pid"] == body["orchestrator"]["pid"]
    paused = fake_client.post(f"/api/searches/{search_id}/pause", headers=JSON_BODY)
    assert paused.status_code == 200 and paused.json()["search"]["state"] == "paused"
    assert paused.json()["orchestrator"] is None  # pause only sets the state
    cancelled = fake_client.post(f"/api/searches/{search_id}/cancel", headers=JSON_BODY).json()
    assert cancelled["search"]["state"] == "cancelled"
    refused = fake_client.post(f"/api/searches/{search_id}/resume", headers=JSON_BODY)
    assert refused.status_code == 409 and "it is cancelled" in refused.json()["detail"]
    assert fake_client.post("/api/searches/99/start", headers=JSON_BODY).status_code == 404


def test_resume_refused_while_another_orchestrator_holds_the_claim(fake_client, filled):
    workspace, search_id = filled
    with Store(workspace.database_url) as store:
        store.set_search_state(search_id, "running")
        store.set_search_state(search_id, "paused")
        store.claim_search(search_id, "orchestrator-elsewhere", ttl_seconds=60)
    refused = fake_client.post(f"/api/searches/{search_id}/resume", headers=JSON_BODY)
    assert refused.status_code == 409 and "orchestrator-elsewhere" in refused.json()["detail"]
    assert fake_client.get(f"/api/searches/{search_id}").json()["search"]["state"] == "paused"
    assert not (workspace.search_dir(search_id) / "orchestrator.log").exists()  # nothing spawned
    with Store(workspace.database_url) as store:
        store.release_search(search_id, "orchestrator-elsewhere")
    resumed = fake_client.post(f"/api/searches/{search_id}/resume", headers=JSON_BODY)
    assert resumed.status_code == 200 and resumed.json()["search"]["state"] == "running"


def test_launcher_uses_the_store_clock_for_claims(filled):
    workspace, search_id = filled
    now = [1_000.0]
    store = Store(workspace.database_url, clock=lambda: now[0])
    try:
        store.claim_search(search_id, "dead-orchestrator", ttl_seconds=30)
        launcher = OrchestratorLauncher(workspace, store, command=sleeper)
        with pytest.raises(OrchestratorRunningError, match="expires in 30 s"):
            launcher.start(search_id)
        now[0] += 31  # the claim lapsed: the dead orchestrator no longer blocks a restart
        info = launcher.start(search_id)
        assert info.running and launcher.info(search_id).pid == info.pid
        with pytest.raises(OrchestratorRunningError, match=f"pid {info.pid}"):
            launcher.start(search_id)
        launcher.process(search_id).kill()
        launcher.process(search_id).wait()
        assert launcher.info(search_id).returncode is not None
    finally:
        store.close()


def test_orchestrator_command_is_ganas_search_resume(tmp_path):
    from nas.cli import build_parser

    workspace = Workspace.resolve(tmp_path)
    options = LaunchOptions(workers=4, executor="local", ray_address="10.0.0.1:6379", lease_seconds=120,
                            threads_per_worker=1)
    command = orchestrator_command(7, workspace, options)
    assert command[:3] == [sys.executable, "-m", "nas.cli"]
    args = build_parser().parse_args(command[3:])
    assert (args.command, args.search_command, args.search_id) == ("search", "resume", 7)
    assert Workspace.resolve(args.workspace) == workspace and args.quiet
    assert (args.workers, args.executor, args.ray_address, args.lease_seconds) == (4, "local", "10.0.0.1:6379", 120)
    assert args.threads_per_worker == 1
    defaults = build_parser().parse_args(orchestrator_command(7, workspace, LaunchOptions())[3:])
    assert (defaults.workers, defaults.executor, defaults.ray_address, defaults.lease_seconds) == (2, "ray", None, 900)
    assert defaults.threads_per_worker is None


def test_spawn_failure_marks_the_search_failed(filled):
    workspace, search_id = filled
    app = create_app(workspace, command=lambda i, w, o: [str(workspace.root / "no-such-program")])
    with local_client(app) as client:
        response = client.post(f"/api/searches/{search_id}/start", headers=JSON_BODY)
        assert response.status_code == 500 and "cannot start the orchestrator" in response.json()["detail"]
        search = client.get(f"/api/searches/{search_id}").json()["search"]
        assert search["state"] == "failed" and "no-such-program" in search["error"]


# -- access control ----------------------------------------------------------------------------------------------
def test_token_required_on_the_api(filled):
    workspace, search_id = filled
    with local_client(create_app(workspace, token=TOKEN)) as client:
        denied = client.get("/api/supernets")
        assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
        assert client.get("/api/supernets", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/supernets", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        ok = client.get("/api/supernets", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()[0]["name"] == "tiny"
        assert client.post(f"/api/searches/{search_id}/cancel", headers=JSON_BODY).status_code == 401
        assert client.get("/openapi.json").status_code == 200  # the schema holds no data
        client.cookies.set(COOKIE, TOKEN)
        assert client.get("/api/supernets").status_code == 401  # a cookie never opens the API


def test_without_pages_the_service_is_the_api_alone(filled):
    """The dashboard is composed in by webapp; nas.service alone answers JSON everywhere."""
    workspace, search_id = filled
    with local_client(create_app(workspace)) as client:
        for path in ("/", "/searches", f"/searches/{search_id}", "/static/style.css"):
            response = client.get(path, follow_redirects=False)
            assert response.status_code == 404 and response.headers["content-type"] == "application/json", path
        missing = client.get("/api/searches/99")
        assert missing.status_code == 404 and missing.json()["error"] == "NotFoundError"
    with local_client(create_app(workspace, token=TOKEN)) as client:
        page = client.get(f"/searches/{search_id}?token={TOKEN}", follow_redirects=False)
        assert page.status_code == 404 and page.headers["content-type"] == "application/json"


def test_tokens_are_compared_in_constant_time(monkeypatch):
    import nas.service.auth as auth

    calls = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    rule = TokenAuth(TOKEN)
    assert rule.accepts_header(f"Bearer {TOKEN}") and not rule.accepts_header("Bearer x")
    assert calls == [(TOKEN.encode(), TOKEN.encode()), (b"x", TOKEN.encode())]
    assert TokenAuth(None).accepts(None) and not rule.accepts(None)


def test_login_links_are_redacted_in_access_logs():
    import logging

    from nas.service.auth import RedactLoginToken

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", f"/searches/1?status=done&token={TOKEN}&page=2", "1.1", 303),
                               None)
    assert RedactLoginToken().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /searches/1?status=done&token=***&page=2 HTTP/1.1" 303'


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.8.9.1", True), ("localhost", True),
                                            ("::1", True), ("[::1]", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.5", False), ("example.org", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_binding_rules(monkeypatch):
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", TOKEN)
    with pytest.raises(TokenRequiredError, match="not a loopback address"):
        check_binding("0.0.0.0", None)
    with pytest.raises(TokenRequiredError, match="at least 16"):
        check_binding("127.0.0.1", "short")
    assert resolve_token(None, {"GANAS_TOKEN": TOKEN}) == TOKEN
    assert resolve_token("flag-wins-over-env", {"GANAS_TOKEN": TOKEN}) == "flag-wins-over-env"
    assert resolve_token(None, {"GANAS_TOKEN": ""}) is None


def test_openapi_schema_lists_every_endpoint_and_no_cdn_pages(client):
    paths = client.get("/openapi.json").json()["paths"]
    expected = {"/api/supernets", "/api/supernets/{name}", "/api/searches", "/api/searches/{search_id}",
                "/api/searches/{search_id}/front", "/api/searches/{search_id}/candidates",
                "/api/searches/{search_id}/candidates/{config}",
                "/api/searches/{search_id}/candidates/{config}/sample.png",
                "/api/searches/{search_id}/candidates.{fmt}", "/api/searches/{search_id}/front.{fmt}"}
    expected |= {f"/api/searches/{{search_id}}/{a}" for a in ("start", "pause", "resume", "cancel")}
    expected |= {"/api/searches/{search_id}/finals", "/api/searches/{search_id}/finals/{config}/files/{kind}",
                 "/api/searches/{search_id}/finalize"}
    assert set(paths) == expected
    post = paths["/api/searches"]["post"]
    assert post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ValidationErrorOut")
    assert post["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    assert set(paths["/api/searches/{search_id}/start"]["post"]["requestBody"]["content"]["application/json"]
               ["schema"]["anyOf"][0]["$ref"].rsplit("/", 1)[1:]) == {"LaunchRequest"}
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404


@pytest.mark.slow
def test_real_orchestrator_runs_a_search_started_through_the_api(registered_supernet):
    """The contract end to end: start spawns `ganas search resume`, which claims, evaluates and finishes."""
    workspace = Workspace(registered_supernet.workspace)
    with local_client(create_app(workspace)) as client:
        made = client.post("/api/searches", json={"supernet": registered_supernet.name, "budgets": ["80M"],
                                                  "metric": "ssim", "strategy": "random", "trials": 4, "seed": 2,
                                                  "batch_size": 4})
        assert made.status_code == 201, made.text
        search_id = made.json()["id"]
        started = client.post(f"/api/searches/{search_id}/start", json={"executor": "local", "workers": 1})
        assert started.status_code == 200, started.text
        client.app.state.ganas.launcher.process(search_id).wait(timeout=240)
        detail = client.get(f"/api/searches/{search_id}").json()
        log = (workspace.search_dir(search_id) / "orchestrator.log").read_text()
        assert detail["search"]["state"] == "done", log
        assert detail["counts"]["done"] == 4 and detail["orchestrator"]["returncode"] == 0
        assert detail["search"]["owner"] is None  # the orchestrator released its claim
        front = client.get(f"/api/searches/{search_id}/front").json()["front"]
        assert front and all(client.get(f"/api/searches/{search_id}/candidates/{p['config']}/sample.png")
                             .status_code == 200 for p in front)
        assert f"search {search_id}: done, 4 done, 0 failed" in log
