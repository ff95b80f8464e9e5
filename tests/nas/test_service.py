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

SHA = "ab" * 32
TOKEN = "s3cret-token-for-tests-0123"
M = 1_000_000
# (config, MACs, fid): B dominates C, D dominates E; the front is A, B, D, F
DONE = [("8_8_8_8_8_8_8_8", 100 * M, 80.0), ("12_8_8_8_8_8_8_8", 150 * M, 60.0), ("16_8_8_8_8_8_8_8", 200 * M, 70.0),
        ("8_12_8_8_8_8_8_8", 300 * M, 50.0), ("8_16_8_8_8_8_8_8", 300 * M, 55.0), ("8_8_12_8_8_8_8_8", 450 * M, 45.0)]
FRONT = ["8_8_8_8_8_8_8_8", "12_8_8_8_8_8_8_8", "8_12_8_8_8_8_8_8", "8_8_12_8_8_8_8_8"]
FAILED, INFEASIBLE, QUEUED = "8_8_16_8_8_8_8_8", "16_16_16_16_16_16_16_16", "8_8_8_12_8_8_8_8"
BUDGETS = [250 * M, 500 * M]


def fill_workspace(root: Path) -> tuple[Workspace, int]:
    """One supernet and one search: 6 done, 1 failed, 1 infeasible, 1 queued candidate."""
    workspace = Workspace.resolve(root)
    with Store(workspace.database_url) as store:
        store.register_supernet("tiny", architecture="mobile_resnet", space="channels-16", checkpoint="/nowhere/sn.pt",
                                checkpoint_sha256=SHA, hparams={"ngf": 16, "n_blocks": 3},
                                dataset={"root": str(root), "size": 32, "paired": True, "search_split": "train2"},
                                metrics=["fid", "kid", "psnr", "ssim"])
        search = store.create_search("tiny", budgets=BUDGETS, objectives=["fid"], strategy="random", trials=10,
                                     seed=1, max_attempts=1)
        store.add_candidates(search.id, [(c, macs, 1000 + i) for i, (c, macs, _) in enumerate(DONE)]
                             + [(FAILED, 120 * M, 900), (INFEASIBLE, 900 * M, 5000, "infeasible", None, "over budget"),
                                (QUEUED, 250 * M, 1200)])
        leased = {c.config: c for c in store.lease_candidates(search.id, "worker-1", 7, 60)}
        for config, _, fid in DONE:
            store.complete_candidate(leased[config].id, "worker-1", {"fid": fid, "kid": fid / 1000},
                                     "fid/inception@sha256:0123", 1.25)
        store.fail_candidate(leased[FAILED].id, "worker-1", "RuntimeError: out of memory")
    return workspace, search.id


@pytest.fixture
def filled(tmp_path):
    return fill_workspace(tmp_path / "ws")


@pytest.fixture
def client(filled):
    with TestClient(create_app(filled[0])) as test_client:
        yield test_client


def sleeper(search_id: int, workspace: Workspace, options: LaunchOptions) -> list[str]:
    """A fake orchestrator: says which search it drives and with how many workers, then sleeps."""
    code = "import sys, time; print('orchestrator for search', *sys.argv[1:], flush=True); time.sleep(5)"
    return [sys.executable, "-c", code, str(search_id), f"workers={options.workers}"]


@pytest.fixture
def fake_client(filled):
    app = create_app(filled[0], command=sleeper)
    with TestClient(app) as test_client:
        yield test_client
    for info in app.state.ganas.launcher.launches().values():
        process = app.state.ganas.launcher.process(info.search_id)
        process.kill()
        process.wait()


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
def test_create_search_validates(client):
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
             ({"supernet": "tiny", "budgets": "2Q", "trials": 3}, 400, "is not a number"),
             ({"supernet": "tiny", "budgets": "1K", "trials": 3}, 400, "below the smallest subnet"),
             ({"supernet": "tiny", "budgets": "1G", "trials": 3, "metric": "miou"}, 400, "not miou"),
             ({"supernet": "tiny", "budgets": "1G", "trials": 3, "strategy": "greedy"}, 400, "unknown strategy"),
             ({"supernet": "tiny", "budgets": "1G", "trials": 0}, 422, "trials"),
             ({"supernet": "tiny", "budgets": "1G", "trials": 3, "workerz": 2}, 422, "workerz")]
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
    with TestClient(create_app(workspace)) as client:
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
    again = fake_client.post(f"/api/searches/{search_id}/resume")
    assert again.status_code == 409 and "already has an orchestrator running" in again.json()["detail"]
    assert fake_client.post(f"/api/searches/{search_id}/start").status_code == 409  # not created any more
    detail = fake_client.get(f"/api/searches/{search_id}").json()
    assert detail["orchestrator"]["pid"] == body["orchestrator"]["pid"]
    paused = fake_client.post(f"/api/searches/{search_id}/pause")
    assert paused.status_code == 200 and paused.json()["search"]["state"] == "paused"
    assert paused.json()["orchestrator"] is None  # pause only sets the state
    cancelled = fake_client.post(f"/api/searches/{search_id}/cancel").json()
    assert cancelled["search"]["state"] == "cancelled"
    refused = fake_client.post(f"/api/searches/{search_id}/resume")
    assert refused.status_code == 409 and "it is cancelled" in refused.json()["detail"]
    assert fake_client.post("/api/searches/99/start").status_code == 404


def test_resume_refused_while_another_orchestrator_holds_the_claim(fake_client, filled):
    workspace, search_id = filled
    with Store(workspace.database_url) as store:
        store.set_search_state(search_id, "running")
        store.set_search_state(search_id, "paused")
        store.claim_search(search_id, "orchestrator-elsewhere", ttl_seconds=60)
    refused = fake_client.post(f"/api/searches/{search_id}/resume")
    assert refused.status_code == 409 and "orchestrator-elsewhere" in refused.json()["detail"]
    assert fake_client.get(f"/api/searches/{search_id}").json()["search"]["state"] == "paused"
    assert not (workspace.search_dir(search_id) / "orchestrator.log").exists()  # nothing spawned
    with Store(workspace.database_url) as store:
        store.release_search(search_id, "orchestrator-elsewhere")
    resumed = fake_client.post(f"/api/searches/{search_id}/resume")
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
    options = LaunchOptions(workers=4, executor="local", ray_address="10.0.0.1:6379", lease_seconds=120)
    command = orchestrator_command(7, workspace, options)
    assert command[:3] == [sys.executable, "-m", "nas.cli"]
    args = build_parser().parse_args(command[3:])
    assert (args.command, args.search_command, args.search_id) == ("search", "resume", 7)
    assert Workspace.resolve(args.workspace) == workspace and args.quiet
    assert (args.workers, args.executor, args.ray_address, args.lease_seconds) == (4, "local", "10.0.0.1:6379", 120)
    defaults = build_parser().parse_args(orchestrator_command(7, workspace, LaunchOptions())[3:])
    assert (defaults.workers, defaults.executor, defaults.ray_address, defaults.lease_seconds) == (2, "ray", None, 900)


def test_spawn_failure_marks_the_search_failed(filled):
    workspace, search_id = filled
    app = create_app(workspace, command=lambda i, w, o: [str(workspace.root / "no-such-program")])
    with TestClient(app) as client:
        response = client.post(f"/api/searches/{search_id}/start")
        assert response.status_code == 500 and "cannot start the orchestrator" in response.json()["detail"]
        search = client.get(f"/api/searches/{search_id}").json()["search"]
        assert search["state"] == "failed" and "no-such-program" in search["error"]


# -- access control ----------------------------------------------------------------------------------------------
def test_token_required_on_the_api(filled):
    workspace, search_id = filled
    with TestClient(create_app(workspace, token=TOKEN)) as client:
        denied = client.get("/api/supernets")
        assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
        assert client.get("/api/supernets", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/supernets", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        ok = client.get("/api/supernets", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()[0]["name"] == "tiny"
        assert client.post(f"/api/searches/{search_id}/cancel").status_code == 401
        assert client.get("/openapi.json").status_code == 200  # the schema holds no data
        client.cookies.set(COOKIE, TOKEN)
        assert client.get("/api/supernets").status_code == 401  # a cookie never opens the API


def test_without_pages_the_service_is_the_api_alone(filled):
    """The dashboard is composed in by webapp; nas.service alone answers JSON everywhere."""
    workspace, search_id = filled
    with TestClient(create_app(workspace)) as client:
        for path in ("/", "/searches", f"/searches/{search_id}", "/static/style.css"):
            response = client.get(path, follow_redirects=False)
            assert response.status_code == 404 and response.headers["content-type"] == "application/json", path
        missing = client.get("/api/searches/99")
        assert missing.status_code == 404 and missing.json()["error"] == "NotFoundError"
    with TestClient(create_app(workspace, token=TOKEN)) as client:
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
                "/api/searches/{search_id}/candidates/{config}/sample.png"}
    expected |= {f"/api/searches/{{search_id}}/{a}" for a in ("start", "pause", "resume", "cancel")}
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
    with TestClient(create_app(workspace)) as client:
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
