"""The store a command uses: ``--store URL`` / ``$GANAS_STORE_URL`` on every command (PostgreSQL when
GANAS_TEST_POSTGRES_URL is set), read commands that never create a workspace, read-only workspaces."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from nas.cli import main
from nas.store import Store
from nas.workspace import STORE_ENV_VAR, Workspace

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get("GANAS_TEST_POSTGRES_URL", "")
READ_COMMANDS = [["search", "list"], ["search", "status", "1"], ["search", "front", "1", "--json"],
                 ["supernet", "list"], ["supernet", "show", "tiny"]]


@pytest.fixture(autouse=True)
def _no_store_in_the_environment(monkeypatch):
    for name in (STORE_ENV_VAR, "GANAS_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)


def _drop_ganas_and_optuna_tables(url: str) -> None:
    import optuna.storages._rdb.models as optuna_models

    from nas.store.models import Base

    engine = create_engine(url)
    try:
        Base.metadata.drop_all(engine)
        optuna_models.BaseModel.metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))  # Optuna's schema stamp
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A store outside the workspace: a SQLite file elsewhere, or the test PostgreSQL database (its ganas and
    Optuna tables dropped before and after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'elsewhere' / 'shared.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("set GANAS_TEST_POSTGRES_URL=postgresql+psycopg2://USER@HOST/DB to run the CLI flow on "
                    "PostgreSQL (the ganas and Optuna tables of that database are dropped)")
    _drop_ganas_and_optuna_tables(POSTGRES_URL)
    yield POSTGRES_URL
    _drop_ganas_and_optuna_tables(POSTGRES_URL)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_the_whole_cli_flow_runs_on_a_store_url(store_url, registered_supernet, tmp_path, capsys):
    ws = tmp_path / "ws"
    store = ["--workspace", str(ws), "--store", store_url]
    status, out, err = _run(capsys, "supernet", *store, "register", str(registered_supernet.checkpoint),
                            "--name", "shared")
    assert status == 0, err
    status, out, err = _run(capsys, "search", *store, "start", "--supernet", "shared", "--budget", "80M",
                            "--metric", "ssim", "--strategy", "tpe", "--trials", "2", "--batch-size", "2",
                            "--executor", "local", "--quiet")
    assert status == 0, err
    search_id = re.search(r"search (\d+) created", out).group(1)
    assert f"search {search_id}: done, 2 done, 0 failed" in out

    status, out, err = _run(capsys, "search", *store, "status", search_id, "--json")
    assert status == 0 and json.loads(out)["counts"]["done"] == 2, err
    status, out, err = _run(capsys, "search", *store, "front", search_id, "--json")
    front = json.loads(out)["front"]
    assert status == 0 and front and all(c["metrics"]["ssim"] > 0 for c in front)
    status, out, err = _run(capsys, "search", *store, "list")
    assert status == 0 and re.search(rf"^{search_id}\s+shared\s+done\s+tpe\s+80M\s+ssim\s+2/2$", out, re.M), out
    status, out, err = _run(capsys, "search", *store, "resume", search_id, "--executor", "local", "--quiet")
    assert status == 0 and f"search {search_id}: done, 2 done, 0 failed" in out, err
    # a read command with a store URL needs no workspace folder, and makes none
    status, out, err = _run(capsys, "supernet", "--workspace", str(tmp_path / "absent"), "--store", store_url, "list")
    assert status == 0 and "shared" in out and not (tmp_path / "absent").exists()

    with Store(store_url) as shared:  # the results are in the store the flag named ...
        assert [s.name for s in shared.list_supernets()] == ["shared"]
        assert shared.count_candidates(int(search_id)).done == 2
    import optuna

    assert f"ganas-search-{search_id}" in optuna.get_all_study_names(storage=store_url)  # ... with Optuna's study
    assert not (ws / "ganas.db").exists()  # nothing in the workspace's own SQLite; MLflow and samples are there
    assert (ws / "mlflow.db").is_file() and any(Workspace(ws).samples_dir(int(search_id)).glob("*.png"))


def test_the_flag_wins_over_the_environment_which_wins_over_the_workspace(registered_supernet, tmp_path,
                                                                           monkeypatch, capsys):
    chosen = f"sqlite:///{tmp_path / 'chosen.db'}"
    with Store(chosen) as store:
        from nas.registry import register_supernet

        register_supernet(store, registered_supernet.checkpoint, "in-chosen")
    ws = ["--workspace", str(registered_supernet.workspace)]  # its own ganas.db holds "tiny"
    monkeypatch.setenv(STORE_ENV_VAR, chosen)
    assert _run(capsys, "supernet", *ws, "list")[1].split()[5] == "in-chosen"
    monkeypatch.setenv(STORE_ENV_VAR, "nosuchdb://x")  # not used: the flag wins
    assert _run(capsys, "supernet", *ws, "--store", chosen, "list")[1].split()[5] == "in-chosen"
    monkeypatch.setenv(STORE_ENV_VAR, "")  # empty: the workspace's own store
    assert _run(capsys, "supernet", *ws, "list")[1].split()[5] == "tiny"
    monkeypatch.chdir(tmp_path)  # a relative SQLite path is made absolute for every process that uses it
    assert Workspace.resolve(None, "rel/x.db").store_url == f"sqlite:///{tmp_path / 'rel' / 'x.db'}"
    monkeypatch.setenv(STORE_ENV_VAR, "sqlite:://bad")  # malformed: reported by commands that open the store only
    assert Workspace.resolve(tmp_path).cache == tmp_path.resolve() / "cache"
    status, out, err = _run(capsys, "supernet", *ws, "list")
    assert status == 2 and "'sqlite:://bad' is not a database URL" in err


@pytest.mark.parametrize("url, message", [
    ("nosuchdb://x", "names a database kind SQLAlchemy does not know"),
    ("postgresql://u@h:notaport/db", "is not a database URL"),
    ("postgresql+psycopg2://ganas:s3cret@127.0.0.1:1/nodb",  # nothing listens on port 1
     "cannot open the store at postgresql+psycopg2://ganas:***@"),
])
def test_a_bad_store_url_is_one_message_and_creates_nothing(url, message, registered_supernet, tmp_path, capsys):
    ws = tmp_path / "ws"
    for argv in (["search", "list"], ["supernet", "register", str(registered_supernet.checkpoint)],
                 ["search", "start", "--supernet", "tiny", "--budget", "80M", "--metric", "ssim"]):
        status, out, err = _run(capsys, argv[0], "--workspace", str(ws), "--store", url, *argv[1:])
        assert status == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert "s3cret" not in err and not ws.exists()
    out_dir = tmp_path / "runs"  # training that would register, and the demo, stop before their first step
    data = registered_supernet.checkpoint.parent / "data" / "labelled"  # a dataset and teacher the run accepts
    for argv in (["train", "supernet", "--data", str(data), "--size", "32", "--space", "channels-16", "--blocks",
                  "3", "--out", str(out_dir), "--teacher", str(registered_supernet.teacher), "--register"],
                 ["demo", "--quick"]):
        status, out, err = _run(capsys, *argv, "--workspace", str(ws), "--store", url)
        assert status == 2 and message in err and "Traceback" not in err and not ws.exists() and not out_dir.exists()


@pytest.mark.parametrize("argv", READ_COMMANDS + [["search", "resume", "1"], ["search", "pause", "1"],
                                                  ["search", "cancel", "1"], ["search", "finalize", "1"]])
def test_commands_about_existing_things_never_create_a_workspace(argv, tmp_path, capsys):
    for folder, what in ((tmp_path / "typo", "no folder"), (tmp_path, "no ganas.db in it")):
        status, out, err = _run(capsys, argv[0], "--workspace", str(folder), *argv[1:])
        assert status == 2 and "Traceback" not in err
        assert f"no ganas workspace at {folder} ({what}; create one with ganas demo / ganas supernet register" in err
    assert list(tmp_path.iterdir()) == []


def test_a_file_named_as_the_workspace_is_refused(registered_supernet, tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("not a workspace")
    for argv in (["search", "list"], ["supernet", "register", str(registered_supernet.checkpoint)],
                 ["search", "start", "--supernet", "tiny", "--budget", "80M", "--metric", "ssim"],
                 ["demo", "--quick"]):
        status, out, err = _run(capsys, argv[0], "--workspace", str(path), *argv[1:])
        assert status == 2 and f"the workspace {path} is a file, not a folder" in err and "Traceback" not in err
    assert path.read_text() == "not a workspace"


def _unprivileged() -> list[str]:
    """A prefix that runs a command without the powers that let root write anything (so chmod -w holds)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file permissions cannot be tested")
    probe = subprocess.run([setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner", "true"])
    if probe.returncode != 0:
        pytest.skip("running as root and cannot drop the capabilities that bypass file permissions")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


def test_a_read_only_workspace_can_be_listed(registered_supernet, tmp_path):
    """chmod -w on the folder and ganas.db: every read command works, a write is one clear message, no file
    changes (the commands run in a process that cannot bypass permissions, even as root)."""
    from nas.search_setup import create_search

    ws = tmp_path / "ws"
    shutil.copytree(registered_supernet.workspace, ws)
    with Store(ws / "ganas.db") as store:
        search_id = create_search(store, "tiny", budgets=[80_000_000], metric="ssim", trials=2).id
    files = {p.name: p.read_bytes() for p in ws.iterdir() if p.is_file()}
    script = ("import sys\nfrom nas.cli import main\n"
              f"for argv in {READ_COMMANDS!r} + [['search', 'pause', '{search_id}']]:\n"
              f"    print('STATUS', main([argv[0], '--workspace', {str(ws)!r}, *argv[1:]]), flush=True)\n")
    (ws / "ganas.db").chmod(0o444)
    ws.chmod(0o555)
    try:
        run = subprocess.run([*_unprivileged(), sys.executable, "-c", script], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, timeout=300)
    finally:
        ws.chmod(0o755)
        (ws / "ganas.db").chmod(0o644)
    statuses = [int(line.split()[1]) for line in run.stdout.splitlines() if line.startswith("STATUS")]
    assert statuses == [0] * len(READ_COMMANDS) + [2], run.stdout + run.stderr
    assert re.search(rf"^{search_id}\s+tiny\s+created", run.stdout, re.M) and "Traceback" not in run.stderr
    assert "not writable: commands that only read (ganas search list" in run.stderr
    assert {p.name: p.read_bytes() for p in ws.iterdir() if p.is_file()} == files


def test_the_service_spawns_its_processes_on_its_own_store(registered_supernet, tmp_path, monkeypatch):
    """``ganas serve --store URL`` lists that store, and the orchestrator it starts gets the same URL (in the
    environment, never on the command line), whatever the server's own environment said."""
    import warnings

    from nas.search_setup import create_search
    from nas.service import create_app
    from nas.service.launcher import LaunchOptions, orchestrator_command

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with Store(url) as store:
        from nas.registry import register_supernet

        register_supernet(store, registered_supernet.checkpoint, "served")
        search = create_search(store, "served", budgets=[80_000_000], metric="ssim", trials=1)
    seen = tmp_path / "seen.txt"
    command = [sys.executable, "-c", f"import os; open({str(seen)!r}, 'w').write(os.environ.get({STORE_ENV_VAR!r}, "
                                     "'unset'))"]
    monkeypatch.setenv(STORE_ENV_VAR, "sqlite:///somewhere/else.db")  # the server's flag wins for its processes
    workspace = Workspace.resolve(tmp_path / "ws", url)
    app = create_app(workspace, command=lambda i, w, o: command)
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:  # a Host the service answers
        assert [s["name"] for s in client.get("/api/supernets").json()] == ["served"]
        started = client.post(f"/api/searches/{search.id}/start", json={"executor": "local"})
        assert started.status_code == 200, started.text
        client.app.state.ganas.launcher.process(search.id).wait(timeout=60)
    assert seen.read_text() == url and not (tmp_path / "ws" / "ganas.db").exists()
    assert url not in " ".join(orchestrator_command(search.id, workspace, LaunchOptions()))  # no password shown
    launcher_env = create_app(Workspace(tmp_path / "ws2")).state.ganas.launcher.environment()
    assert STORE_ENV_VAR not in launcher_env  # the workspace's own store: the child finds it from --workspace


def test_commands_about_an_existing_search_never_create_the_store_a_url_names(tmp_path, capsys):
    """A typo in ``--store sqlite:///...`` must not create an empty store (and a workspace) to say "no search 1"."""
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    for action in (["resume", "1"], ["pause", "1"], ["finalize", "1"]):
        status, out, err = _run(capsys, "search", "--workspace", str(tmp_path / "ws"), "--store", url, *action)
        assert status == 2 and "no store at" in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
