"""The candidates listing filtered, sorted and paged by the database, and the CSV / JSON downloads of the
candidates and the front (the dashboard's links: tests/dashboards/test_browse.py)."""
from __future__ import annotations

import csv
import io

import pytest

from nas.service import create_app
from tests.nas.test_service import (DONE, FAILED, FRONT, INFEASIBLE, M, QUEUED, TEACHER_FID, add_teacher,
                                    fill_workspace, local_client)


@pytest.fixture
def filled(tmp_path):
    return fill_workspace(tmp_path / "ws")


@pytest.fixture
def client(filled):
    with local_client(create_app(filled[0])) as test_client:
        yield test_client


def _configs(client, search_id, query):
    body = client.get(f"/api/searches/{search_id}/candidates?{query}").json()
    return body["total"], [item["config"] for item in body["items"]]


def test_candidates_sorted_filtered_and_paged(client, filled):
    _, search_id = filled
    by_fid = [c for c, _, _ in sorted(DONE, key=lambda d: d[2])]
    no_fid = [FAILED, INFEASIBLE, QUEUED]  # last, in proposal order
    assert _configs(client, search_id, "sort=metric:fid&limit=100") == (9, by_fid + no_fid)
    assert _configs(client, search_id, "sort=metric:fid&descending=true&offset=1&limit=2") == (9, by_fid[::-1][1:3])
    within = [c for c, macs, _ in sorted(DONE, key=lambda d: -d[1]) if macs <= 250 * M]
    assert _configs(client, search_id, f"status=done&max_macs={250 * M}&sort=macs&descending=true") == (3, within)
    assert _configs(client, search_id, "front=true&sort=macs") == (4, FRONT)
    assert _configs(client, search_id, "front=true&status=failed") == (0, [])


@pytest.mark.parametrize("query, words", [("sort=bogus", "sort by one of order, macs"),
                                          ("sort=metric:a%20b", "does not name a metric"),
                                          ("max_macs=-1", "max_macs"), ("status=gone", "status"),
                                          ("front=true&metric=lpips", "no objective 'lpips'")])
def test_bad_filters_are_one_clear_4xx(client, filled, query, words):
    _, search_id = filled
    for path in ("candidates", "candidates.csv"):
        response = client.get(f"/api/searches/{search_id}/{path}?{query}")
        assert 400 <= response.status_code < 500 and words in response.text, (path, response.text)


def test_candidates_download_csv_and_json(client, filled):
    workspace, search_id = filled
    add_teacher(workspace, search_id)
    response = client.get(f"/api/searches/{search_id}/candidates.csv?status=done&sort=metric:fid")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == f'attachment; filename="search{search_id}-candidates.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["config"] for r in rows] == [c for c, _, _ in sorted(DONE, key=lambda d: d[2])]
    first = rows[0]
    best = min(DONE, key=lambda d: d[2])
    assert (int(first["macs"]), float(first["fid"]), first["status"]) == (best[1], best[2], "done")
    assert float(first["fid_vs_teacher"]) == pytest.approx(best[2] / TEACHER_FID)
    assert float(first["macs_vs_teacher"]) == pytest.approx(5000 * M / best[1])
    every = client.get(f"/api/searches/{search_id}/candidates.json").json()
    assert [c["config"] for c in every] == [c for c, _, _ in DONE] + [FAILED, INFEASIBLE, QUEUED]
    assert every[6]["error"] == "RuntimeError: out of memory"


def test_front_download_csv_and_json(client, filled):
    _, search_id = filled
    document = client.get(f"/api/searches/{search_id}/front.json")
    assert document.status_code == 200 and "attachment" in document.headers["content-disposition"]
    assert document.json() == client.get(f"/api/searches/{search_id}/front").json()
    rows = list(csv.DictReader(io.StringIO(client.get(f"/api/searches/{search_id}/front.csv").text)))
    assert [(r["config"], float(r["fid"]), r["on_front"] == "True") for r in rows] == \
        [(c, fid, c in FRONT) for c, _, fid in DONE]


def test_unknown_format_or_search(client, filled):
    _, search_id = filled
    response = client.get(f"/api/searches/{search_id}/front.xlsx")
    assert response.status_code == 400 and "csv, json" in response.json()["detail"]
    assert client.get("/api/searches/99/candidates.csv").status_code == 404
    assert client.get("/api/searches/99/front.json").status_code == 404
