"""The service's request guard: no other web site and no foreign Host name can change anything.

Requests go through the app with the fake orchestrator command of tests/nas/test_service.py, so a
refused ``start`` that spawned anyway would leave a process and a log behind.
"""
from __future__ import annotations

import json

import pytest

from nas.cli import main
from nas.service import create_app
from nas.service.errors import AllowedHostsError
from nas.service.guard import AllowedHosts, HostName, allowed_hosts
from nas.store import Store
from tests.cli_plugins import declared_command_plugins
from tests.nas.test_service import (BASE_URL, JSON_BODY, TOKEN, fill_workspace, kill_launched, local_client,
                                    sleeper)

EVIL = "http://evil.example"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def served(tmp_path):
    """A workspace with a created search, and a client of the API whose orchestrators are stand-ins, bound as
    ``ganas serve`` binds it by default."""
    workspace, search_id = fill_workspace(tmp_path / "ws")
    app = create_app(workspace, command=sleeper, hosts=allowed_hosts("127.0.0.1", 8765))
    with local_client(app) as client:
        yield workspace, search_id, client
    kill_launched(app)


def _unchanged(workspace, search_id, client):
    """What a refused request must leave as it was: the search's row, its folder, the processes started."""
    with Store(workspace.database_url) as store:
        search = store.get_search(search_id)
        row = (search.state, search.owner, search.error, search.updated_at)
    return row, sorted(p.name for p in workspace.root.rglob("*")), client.app.state.ganas.launcher.launches()


# (what a browser on another site, or a page under a rebound name, can send; why it is refused)
CROSS_SITE = [
    ({**FORM, "Origin": EVIL}, "", "posted from http://evil.example (Origin)"),
    ({**FORM, "Origin": EVIL}, "workers=3", "posted from http://evil.example (Origin)"),
    ({**FORM, "Referer": f"{EVIL}/page.html"}, "", "posted from http://evil.example/page.html (Referer)"),
    ({**FORM, "Origin": "null"}, "", "posted from null"),  # a sandboxed iframe or a file: page
    ({**FORM, "Sec-Fetch-Site": "cross-site"}, "", "Sec-Fetch-Site: cross-site"),
    ({**JSON_BODY, "Origin": EVIL}, "{}", "posted from http://evil.example"),  # JSON only with CORS: never granted
    ({**JSON_BODY, "Origin": "http://127.0.0.1:9999"}, "{}", "posted from http://127.0.0.1:9999"),  # another port
    (FORM, "workers=3", "must send Content-Type: application/json (got Content-Type: "
                        "application/x-www-form-urlencoded)"),
    ({"Content-Type": "text/plain"}, '{"workers": 3}', "got Content-Type: text/plain"),  # a form's enctype
    ({}, "", "got no Content-Type"),
]


@pytest.mark.parametrize("action", ["cancel", "start", "pause", "resume"])
def test_cross_site_posts_are_refused_and_change_nothing(served, action):
    workspace, search_id, client = served
    before = _unchanged(workspace, search_id, client)
    for headers, body, message in CROSS_SITE:
        response = client.post(f"/api/searches/{search_id}/{action}", headers=headers, content=body)
        assert response.status_code == 403, (headers, response.text)
        assert response.json()["error"] == "CrossSiteRequestError" and message in response.json()["detail"], headers
    assert _unchanged(workspace, search_id, client) == before
    assert not (workspace.search_dir(search_id) / "orchestrator.log").exists()  # nothing spawned


def test_cross_site_creates_write_nothing(served):
    workspace, search_id, client = served
    body = json.dumps({"supernet": "tiny", "budgets": ["400M"], "metric": "fid", "trials": 2})
    refused = client.post("/api/searches", headers={**JSON_BODY, "Origin": EVIL}, content=body)
    assert refused.status_code == 403
    with Store(workspace.database_url) as store:
        assert [s.id for s in store.list_searches()] == [search_id]


def test_same_origin_json_and_api_clients_still_work(served):
    workspace, search_id, client = served
    started = client.post(f"/api/searches/{search_id}/start", json={"workers": 3},
                          headers={"Origin": BASE_URL, "Sec-Fetch-Site": "same-origin"})
    assert started.status_code == 200, started.text
    assert started.json()["orchestrator"]["command"][-1] == "workers=3"
    paused = client.post(f"/api/searches/{search_id}/pause", headers={**JSON_BODY, "Referer": f"{BASE_URL}/searches"})
    assert paused.status_code == 200 and paused.json()["search"]["state"] == "paused"
    # a script (curl, requests): no Origin, JSON with a charset, an empty body
    cancelled = client.post(f"/api/searches/{search_id}/cancel",
                            headers={"Content-Type": "application/json; charset=utf-8"})
    assert cancelled.status_code == 200 and cancelled.json()["search"]["state"] == "cancelled"
    # another name of this loopback server is its own origin too
    assert client.post("/api/searches/99/cancel", headers={**JSON_BODY, "Origin": "http://localhost:8765"},
                       ).status_code == 404
    assert client.get("/api/searches", headers={"Origin": EVIL}).status_code == 200  # reads change nothing


def test_token_clients_send_json_and_cross_site_posts_stay_refused(tmp_path):
    workspace, search_id = fill_workspace(tmp_path / "ws")
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with local_client(create_app(workspace, token=TOKEN, command=sleeper)) as client:
        cancelled = client.post(f"/api/searches/{search_id}/cancel", headers={**bearer, **JSON_BODY})
        assert cancelled.status_code == 200 and cancelled.json()["search"]["state"] == "cancelled"
        assert client.post(f"/api/searches/{search_id}/cancel", headers=JSON_BODY).status_code == 401
        forged = client.post(f"/api/searches/{search_id}/pause", headers={**bearer, **FORM, "Origin": EVIL})
        assert forged.status_code == 403


def test_a_foreign_host_is_refused_before_anything_else(served):
    workspace, search_id, client = served
    before = _unchanged(workspace, search_id, client)
    rebound = {"Host": "evil.example:8765"}  # DNS rebinding: the attacker's name, this server's address
    listed = client.get("/api/searches", headers=rebound)
    assert listed.status_code == 421 and listed.json()["error"] == "HostNotAllowedError"
    assert "does not answer to the name evil.example:8765" in listed.json()["detail"]
    assert "--allowed-host" in listed.json()["detail"] and "localhost" not in listed.json()["detail"]
    cancelled = client.post(f"/api/searches/{search_id}/cancel", headers={**rebound, **JSON_BODY, "Origin": EVIL})
    assert cancelled.status_code == 421
    assert client.get("/openapi.json", headers=rebound).status_code == 421
    assert client.get("/api/searches", headers={"Host": "bad host"}).status_code == 421
    assert _unchanged(workspace, search_id, client) == before
    assert client.get("/api/searches", headers={"Host": "127.0.0.1:9999"}).status_code == 421  # not its port
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST:8765"):
        assert client.get("/api/searches", headers={"Host": host}).status_code == 200, host


def test_a_foreign_host_on_a_dashboard_page_is_an_html_error(tmp_path):
    from webapp.app import create_web_app

    workspace, search_id = fill_workspace(tmp_path / "ws")
    with local_client(create_web_app(workspace)) as client:
        page = client.get(f"/searches/{search_id}", headers={"Host": "evil.example"})
        assert page.status_code == 421 and "text/html" in page.headers["content-type"]
        assert "does not answer to the name evil.example" in page.text


def test_allowed_hosts_of_a_loopback_binding():
    hosts = allowed_hosts("127.0.0.1", 8765, ["ganas.lab.example", "gpu-node-3:9000"])
    allowed = ["127.0.0.1:8765", "localhost:8765", "[::1]:8765", "ganas.lab.example", "ganas.lab.example:443",
               "gpu-node-3:9000"]
    refused = ["127.0.0.1:9999", "127.0.0.1", "evil.example:8765", "gpu-node-3:8765", "lab.example", "10.0.0.5:8765"]
    assert all(hosts.allows(HostName.parse(h, 80)) for h in allowed)
    assert not any(hosts.allows(HostName.parse(h, 80)) for h in refused)
    port_zero = allowed_hosts("localhost", 0)  # the system picks the port
    assert port_zero.allows(HostName.parse("127.0.0.1:41234")) and not port_zero.allows(HostName.parse("a:1"))


def test_allowed_hosts_of_other_bindings():
    lan = allowed_hosts("10.0.0.5", 8765, token=TOKEN)
    assert lan.allows(HostName.parse("10.0.0.5:8765")) and not lan.allows(HostName.parse("evil.example:8765"))
    with pytest.raises(AllowedHostsError, match="every interface.*--allowed-host NAME"):
        allowed_hosts("0.0.0.0", 8765, token=TOKEN)
    with pytest.raises(AllowedHostsError, match="every interface"):
        allowed_hosts("::", 8765, token=TOKEN)
    everywhere = allowed_hosts("0.0.0.0", 8765, ["gpu-node-3"], token=TOKEN)
    assert everywhere.allows(HostName.parse("gpu-node-3:8765")) and everywhere.allows(HostName.parse("localhost:8765"))
    assert not everywhere.allows(HostName.parse("evil.example:8765"))
    anything = allowed_hosts("0.0.0.0", 8765, ["*"], token=TOKEN)
    assert anything.any_host and anything.allows(HostName.parse("evil.example:8765"))
    assert anything.describe() == "any host"
    with pytest.raises(AllowedHostsError, match="needs an access token"):
        allowed_hosts("127.0.0.1", 8765, ["*"])


@pytest.mark.parametrize("text", ["http://ganas.lab.example", "ganas.lab.example/api", "host:0", "host:99999",
                                  "host:port", "a:b:c", "[::1", "", "user@host"])
def test_malformed_allowed_hosts_are_refused(text):
    with pytest.raises(AllowedHostsError, match="is not a host"):
        allowed_hosts("127.0.0.1", 8765, [text])


@pytest.mark.parametrize("text, name, port", [("Ganas.Lab.Example", "ganas.lab.example", None),
                                              ("gpu-node-3:8765", "gpu-node-3", 8765), ("[::1]:80", "::1", 80),
                                              ("::1", "::1", None), ("10.0.0.5:1", "10.0.0.5", 1)])
def test_host_names_parse(text, name, port):
    parsed = HostName.parse(text)
    assert (parsed.name, parsed.port) == (name, port)
    assert HostName.parse(str(parsed)) == parsed


def test_an_app_built_without_hosts_answers_the_loopback_names_on_any_port(tmp_path):
    hosts = AllowedHosts.loopback()
    assert hosts.allows(HostName.parse("localhost:1")) and not hosts.allows(HostName.parse("testserver:80"))
    workspace, _ = fill_workspace(tmp_path / "ws")
    with local_client(create_app(workspace)) as client:
        assert client.get("/api/searches", headers={"Host": "localhost:1234"}).status_code == 200
        assert client.get("/api/searches", headers={"Host": "testserver"}).status_code == 421


def test_serve_refuses_every_interface_without_allowed_hosts(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANAS_TOKEN", TOKEN)
    workspace = tmp_path / "ws"
    plugins = declared_command_plugins()
    assert main(["serve", "--host", "0.0.0.0", "--workspace", str(workspace)], plugins) == 2
    assert "ganas serve: error: serving on 0.0.0.0 (every interface)" in capsys.readouterr().err
    assert main(["serve", "--allowed-host", "http://gpu-node-3", "--workspace", str(workspace)], plugins) == 2
    assert "--allowed-host 'http://gpu-node-3' is not a host" in capsys.readouterr().err
    monkeypatch.delenv("GANAS_TOKEN")
    assert main(["serve", "--allowed-host", "*", "--workspace", str(workspace)], plugins) == 2
    assert "needs an access token" in capsys.readouterr().err
    assert not workspace.exists()  # refused before anything was opened
