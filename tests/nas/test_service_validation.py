"""The REST API refuses a bad search or run field with a 422 JSON naming it, and writes nothing; ids beyond what the
store can hold are not found (404 JSON), never a 500."""
from __future__ import annotations

import pytest

from nas.service import create_app
from nas.store import Store
from tests.nas.test_service import fill_workspace, kill_launched, local_client, sleeper

BASE = {"supernet": "tiny", "budgets": "1G", "metric": "ssim", "strategy": "random", "trials": 2}
HUGE = 99999999999999999999999


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.delenv("GANAS_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no FID Inception weights on this "server"
    workspace, search_id = fill_workspace(tmp_path / "ws")
    app = create_app(workspace, command=sleeper)
    with local_client(app) as client:
        yield workspace, search_id, client, app
    kill_launched(app)


def _searches(workspace):
    with Store(workspace.database_url) as store:
        return store.list_searches()


# (fields over BASE, the field the answer names, in its detail)
BAD_BODIES = [
    ({"budgets": "1e999"}, "budgets", "MACs budget '1e999' is above 9,223,372,036,854,775,807 MACs"),
    ({"budgets": [2**64]}, "budgets", "is above 9,223,372,036,854,775,807 MACs"),
    ({"seed": 2**70}, "seed", "seed must be an integer from 0 to 4,294,967,295"),
    ({"seed": -1}, "seed", "seed must be an integer from 0"),
    ({"trials": 2**40}, "trials", "trials must be a positive integer (at most 2,147,483,647)"),
    ({"trials": 0}, "trials", "trials must be a positive integer"),
    ({"batch_size": 0}, "batch_size", "batch_size must be a positive integer"),
    ({"max_attempts": 2**31}, "max_attempts", "max_attempts must be a positive integer"),
    ({"macs_size": [-64, 64]}, "macs_size", "macs_size must be a positive integer"),
    ({"metric": "miou"}, "metric", "not miou"),
    ({"metric": "fid"}, "inception_weights", "FID Inception-v3 weights file"),
    ({"segmenter": "/etc/passwd"}, "segmenter", "/etc/passwd is not a segmenter file"),
    ({"strategy_settings": {"max_tries": 0}}, "strategy_settings", "max_tries must be an integer >= 1"),
    ({"metric_options": {"kid_subsets": 0}}, "metric_options.kid_subsets", "kid_subsets must be an integer from 1"),
]


@pytest.mark.parametrize("fields, field, message", BAD_BODIES, ids=[b[1] + str(i) for i, b in enumerate(BAD_BODIES)])
def test_a_bad_search_field_is_a_422_naming_it_and_nothing_is_written(served, fields, field, message):
    workspace, _, client, _ = served
    before = _searches(workspace)
    response = client.post("/api/searches", json={**BASE, **fields})
    body = response.json()
    assert response.status_code == 422 and response.headers["content-type"] == "application/json", response.text
    assert body["field"] == field and message in body["detail"], body
    assert body["errors"] == [{"loc": ["body", *field.split(".")], "msg": body["detail"], "type": "value_error"}]
    assert _searches(workspace) == before


def test_cache_dir_is_no_field_of_the_api(served):
    workspace, _, client, _ = served
    response = client.post("/api/searches", json={**BASE, "cache_dir": "/tmp/elsewhere"})
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["body", "cache_dir"]
    assert len(_searches(workspace)) == 1


@pytest.mark.parametrize("action, body, field", [
    ("start", {"workers": 0}, "workers"), ("start", {"workers": -1}, "workers"),
    ("start", {"workers": 2**70}, "workers"),
    ("start", {"lease_seconds": 0}, "lease_seconds"), ("start", {"lease_seconds": -1.5}, "lease_seconds"),
    ("start", {"executor": "slurm"}, "executor"), ("resume", {"workers": 0}, "workers"),
    ("resume", {"lease_seconds": 0}, "lease_seconds"),
])
def test_start_and_resume_refuse_bad_run_settings_before_the_search_changes(served, action, body, field):
    workspace, search_id, client, app = served
    if action == "resume":
        with Store(workspace.database_url) as store:
            store.set_search_state(search_id, "running")
            store.set_search_state(search_id, "paused")
    before = _searches(workspace)
    response = client.post(f"/api/searches/{search_id}/{action}", json=body)
    assert response.status_code == 422 and response.json()["field"] == field, response.text
    assert _searches(workspace) == before and app.state.ganas.launcher.info(search_id) is None
    assert not (workspace.search_dir(search_id) / "orchestrator.log").exists()


def test_finalize_refuses_counts_beyond_the_store(served):
    workspace, search_id, client, _ = served
    for body, field in (({"steps": 2**40}, "steps"), ({"workers": 0}, "workers"), ({"budgets": "1e999"}, "budgets")):
        response = client.post(f"/api/searches/{search_id}/finalize", json=body)
        assert response.status_code == 422 and response.json()["field"] == field, response.text
    with Store(workspace.database_url) as store:
        assert store.finals(search_id) == ()


@pytest.mark.parametrize("method, path", [
    ("get", f"/api/searches/{HUGE}"), ("get", f"/api/searches/-{HUGE}"), ("get", f"/api/searches/{HUGE}/candidates"),
    ("get", f"/api/searches/{HUGE}/candidates/8_8_8_8_8_8_8_8"), ("get", f"/api/searches/{HUGE}/front"),
    ("get", f"/api/searches/{HUGE}/finals"), ("post", f"/api/searches/{HUGE}/cancel"),
    ("post", f"/api/searches/{HUGE}/start"), ("post", f"/api/searches/{2**31}/pause"),
])
def test_ids_beyond_the_store_are_not_found(served, method, path):
    _, _, client, _ = served
    response = client.request(method, path, headers={"Content-Type": "application/json"})
    assert response.status_code == 404 and response.headers["content-type"] == "application/json", response.text
    assert "no search with id" in response.json()["detail"] and "list_searches" not in response.json()["detail"]
