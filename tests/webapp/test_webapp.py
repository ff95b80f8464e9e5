"""The composed web app (REST API + dashboard) and ``ganas serve``, found by the CLI as a plug-in."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import pytest

from nas.cli import PLUGIN_GROUP, build_parser, command_plugins, main
from nas.service.auth import COOKIE
from tests.cli_plugins import declared_command_plugins
from tests.nas.test_service import TOKEN, _wait_for, fill_workspace, local_client
from webapp.app import create_web_app

# `ganas ...` as this checkout declares it, whether or not the installed metadata is current
GANAS = [sys.executable, "-c", "import sys; from nas.cli import main; from tests.cli_plugins import "
                               "declared_command_plugins as d; sys.exit(main(sys.argv[1:], d()))"]


@pytest.fixture
def filled(tmp_path):
    return fill_workspace(tmp_path / "ws")


def test_serve_is_a_declared_command_plugin():
    plugins = declared_command_plugins()
    assert [(p.name, p.value, p.group) for p in plugins] == [("serve", "webapp.serve:register", PLUGIN_GROUP)]
    args = build_parser(plugins).parse_args(["serve", "--port", "9000"])
    assert args.command == "serve" and args.port == 9000 and args.host == "127.0.0.1"
    without = build_parser(())
    with pytest.raises(SystemExit):
        without.parse_args(["serve"])  # nas alone has no serve command: it comes from above
    installed = {p.name: p.value for p in command_plugins()}
    assert installed.get("serve", "webapp.serve:register") == "webapp.serve:register"  # a stale install lacks it


def test_token_required_on_api_and_dashboard(filled):
    workspace, search_id = filled
    with local_client(create_web_app(workspace, token=TOKEN)) as client:
        assert client.get("/api/supernets").status_code == 401
        assert client.get("/static/style.css").status_code == 200  # the stylesheet holds no data
        page = client.get(f"/searches/{search_id}")
        assert page.status_code == 401 and "Access token needed" in page.text
        assert client.get(f"/searches/{search_id}?token=wrong").status_code == 401
        login = client.get(f"/searches/{search_id}?status=done&token={TOKEN}", follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == f"/searches/{search_id}?status=done"
        assert "httponly" in login.headers["set-cookie"].lower()
        assert client.cookies.get(COOKIE) == TOKEN
        assert client.get(f"/searches/{search_id}").status_code == 200
        assert client.get("/api/supernets").status_code == 401  # the cookie never opens the API


def test_errors_are_pages_outside_the_api_and_json_inside(filled):
    workspace, _ = filled
    with local_client(create_web_app(workspace)) as client:
        page = client.get("/searches/99")
        assert page.status_code == 404 and "text/html" in page.headers["content-type"] and "Error 404" in page.text
        invalid = client.get("/searches/1?page=0")
        assert invalid.status_code == 422 and "Error 422" in invalid.text
        api = client.get("/api/searches/99")
        assert api.status_code == 404 and api.json()["error"] == "NotFoundError"


def test_serve_refuses_open_bind_without_token(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GANAS_TOKEN", raising=False)
    workspace = tmp_path / "ws"
    assert main(["serve", "--host", "0.0.0.0", "--workspace", str(workspace)], declared_command_plugins()) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganas serve: error: serving on 0.0.0.0") and "--token" in err
    assert not workspace.exists()  # refused before anything was opened


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_uvicorn_and_keeps_the_token_out_of_its_log(filled):
    workspace, _ = filled
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "GANAS_TOKEN"}
    refused = subprocess.run([*GANAS, "serve", "--host", "0.0.0.0", "--port", str(port)],
                             env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "needs an access token" in refused.stderr
    server = subprocess.Popen([*GANAS, "serve", "--workspace", str(workspace.root), "--port", str(port),
                               "--allowed-host", "ganas.lab.example"],
                              env={**env, "GANAS_TOKEN": TOKEN}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def answers() -> bool:
            request = urllib.request.Request(f"{base}/api/supernets", headers={"Authorization": f"Bearer {TOKEN}"})
            try:
                with urllib.request.urlopen(request, timeout=1) as response:
                    return response.status == 200
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()
                return False

        _wait_for(answers, timeout=30)
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # follows the login redirect
        with browser.open(f"{base}/searches?token={TOKEN}", timeout=5) as response:
            assert response.status == 200 and response.url == f"{base}/searches"
        assert _status(f"{base}/api/supernets", {"Host": "ganas.lab.example"}) == 200  # --allowed-host
        assert _status(f"{base}/api/supernets", {"Host": f"evil.example:{port}"}) == 421
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0].decode()
    assert f"dashboard {base}/?token=<token>" in output and "GET /searches?token=*** HTTP/1.1\" 303" in output
    assert f"answers requests for 127.0.0.1:{port}, localhost:{port}, [::1]:{port}, ganas.lab.example" in output
    assert TOKEN not in output


def _status(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}", **headers})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_behind_a_token_final_files_and_the_finalize_form_need_the_login(filled):
    from tests.nas.test_service import FINAL_FILES, FINALS, add_finals, add_teacher

    workspace, search_id = filled
    add_teacher(workspace, search_id)
    add_finals(workspace, search_id)
    page_file = f"/searches/{search_id}/finals/{FINALS[0][0]}/files/onnx"
    with local_client(create_web_app(workspace, token=TOKEN)) as client:
        assert client.get(page_file).status_code == 401
        assert client.post(f"/searches/{search_id}/finalize", data={"steps": "5"}).status_code == 401
        client.get(f"/searches/{search_id}?token={TOKEN}")  # the login link sets the cookie
        assert client.get(page_file).content == FINAL_FILES["onnx"]
        assert client.get(f"/api{page_file}").status_code == 401  # the cookie never opens the API
        api = client.get(f"/api{page_file}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert api.status_code == 200 and api.content == FINAL_FILES["onnx"]
        forged = client.post(f"/searches/{search_id}/finalize", data={"steps": "5"}, follow_redirects=False)
        assert forged.status_code == 403 and "form token" in forged.text  # logged in, but not from our page
