"""A store that already holds rows ganas cannot read (written by hand, or by a ganas that checked less) still lists:
every listing (CLI, REST API, dashboard) leaves those rows out and names each, with its id and why."""
from __future__ import annotations

import json
import sqlite3

import pytest

from nas.cli import main
from nas.store import Store, UnreadableRowError
from tests.nas.test_service import fill_workspace, local_client
from webapp.app import create_web_app

OBJECTIVES = json.dumps([{"metric": "fid", "direction": "minimize"}])
# search rows the store's own checks refuse, as SQLite keeps them: (budgets, strategy settings, trials) -> why
BAD_SEARCHES = {
    2: (("[1e999]", "{}", 2), "budgets holds inf"),  # JSON's 1e999 reads back as infinity
    3: (("[" + "9" * 1000 + "]", "{}", 2), "budgets holds a 1000-digit integer"),
    4: (("[1000000000]", "{oops", 2), "a JSON column holds text that is not JSON"),
    5: (("[1000000000]", "{}", "many"), "trials holds 'many'"),
}


@pytest.fixture
def spoiled(tmp_path):
    """fill_workspace's search 1, the BAD_SEARCHES, a good search 6 after them, and a supernet whose dataset is not
    JSON next to the good one."""
    workspace, first = fill_workspace(tmp_path / "ws")
    database = sqlite3.connect(workspace.root / "ganas.db")
    with database:
        for search_id, ((budgets, settings, trials), _) in BAD_SEARCHES.items():
            database.execute(
                "INSERT INTO ganas_searches (id, supernet_id, budgets, objectives, strategy, strategy_settings, plan, "
                "seed, trials, max_attempts, state, created_at, updated_at) VALUES (?, 1, ?, ?, 'random', ?, NULL, 0, "
                "?, 3, 'created', 0, 0)", (search_id, budgets, OBJECTIVES, settings, trials))
        database.execute(
            "INSERT INTO ganas_supernets (name, architecture, hparams, space, checkpoint, checkpoint_sha256, dataset, "
            "metrics, created_at) SELECT 'broken', architecture, hparams, space, checkpoint, checkpoint_sha256, "
            "'{not json', metrics, created_at FROM ganas_supernets WHERE id = 1")
    database.close()
    with Store(workspace.database_url) as store:
        last = store.create_search("tiny", budgets=[10**9], objectives=["fid"], strategy="random", trials=2)
    assert (first, last.id) == (1, 6)
    return workspace


def test_the_store_lists_the_readable_rows_and_names_the_others(spoiled):
    with Store(spoiled.database_url) as store:
        listing = store.search_listing()
        assert [s.id for s in listing.records] == [1, 6] == [s.id for s in store.list_searches()]
        assert [(u.table, u.id) for u in listing.unreadable] == [("search", i) for i in BAD_SEARCHES]
        for row in listing.unreadable:
            assert BAD_SEARCHES[row.id][1] in row.reason, row
        assert [s.id for s in store.search_listing(state="created").records] == [1, 6]
        for search_id, (_, why) in BAD_SEARCHES.items():
            with pytest.raises(UnreadableRowError, match=f"search {search_id} cannot be read from the store") as info:
                store.get_search(search_id)
            assert why in str(info.value) and "correct or delete that row" in str(info.value)
        supernets = store.supernet_listing()
        assert [s.name for s in supernets.records] == ["tiny"]
        assert [(u.table, u.id) for u in supernets.unreadable] == [("supernet", 2)]


def test_the_cli_lists_and_warns(spoiled, capsys):
    workspace = ["--workspace", str(spoiled.root)]
    assert main(["search", *workspace, "list"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()] == ["ID", "1", "6"]
    warnings = err.splitlines()
    assert len(warnings) == len(BAD_SEARCHES) and "Traceback" not in err
    for line, (search_id, (_, why)) in zip(warnings, BAD_SEARCHES.items()):
        assert line.startswith(f"ganas search list: warning: search {search_id} cannot be read") and why in line
    assert main(["search", *workspace, "status", "2"]) == 2
    assert "search 2 cannot be read from the store (budgets holds inf, not an integer" in capsys.readouterr().err
    assert main(["search", *workspace, "status", "6"]) == 0
    assert main(["supernet", *workspace, "list"]) == 0
    out, err = capsys.readouterr()
    assert "tiny" in out and "broken" not in out and "warning: supernet 2 cannot be read" in err


def test_the_api_and_the_dashboard_list_and_warn(spoiled):
    with local_client(create_web_app(spoiled)) as client:
        listed = client.get("/api/searches")
        assert listed.status_code == 200 and [s["id"] for s in listed.json()] == [1, 6]
        warnings = listed.headers.get_list("warning")
        assert [w.split('"')[1].split(" cannot")[0] for w in warnings] == [f"search {i}" for i in BAD_SEARCHES]
        assert all(w.startswith('199 ganas "') for w in warnings)
        detail = client.get("/api/searches/4")
        assert detail.status_code == 500 and detail.json()["error"] == "UnreadableRowError"
        assert "search 4 cannot be read from the store (a JSON column holds text that is not JSON" in \
            detail.json()["detail"]
        assert client.get("/api/searches/6").status_code == 200
        supernets = client.get("/api/supernets")
        assert [s["name"] for s in supernets.json()] == ["tiny"] and "supernet 2" in supernets.headers["warning"]
        home = client.get("/")  # the dashboard's home is the searches page
        assert home.status_code == 200 and 'href="/searches/1"' in home.text and 'href="/searches/6"' in home.text
        for search_id in BAD_SEARCHES:
            assert f"search {search_id} cannot be read from the store" in home.text
            assert f'href="/searches/{search_id}"' not in home.text
        page = client.get("/supernets")
        assert page.status_code == 200 and "supernet 2 cannot be read" in page.text
        assert client.get("/searches/2").status_code == 500
