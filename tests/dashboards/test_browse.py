"""The search page's candidates table: filtered, sorted and paged by the database, with CSV / JSON downloads."""
from __future__ import annotations

import csv
import html as html_lib
import io
import json
import re

import pytest

import dashboards.pages as pages
from nas.store import Store
from tests.nas.test_service import (DONE, FAILED, FINAL_FIGURES, FINALS, FRONT, INFEASIBLE, M, QUEUED, TEACHER_FID,
                                    TOKEN, add_finals, add_teacher, local_client)
from webapp.app import create_web_app


def _table(html: str) -> list[str]:
    table = html[html.index('id="candidates"'):]
    return re.findall(r">([0-9_]+)</code></a></td>\s*<td><span class=\"chip", table)


def test_table_filters_and_sorts(client, filled):
    _, search_id = filled
    html = client.get(f"/searches/{search_id}?status=done&budget={250 * M}&sort=metric:fid&desc=true").text
    within = sorted([d for d in DONE if d[1] <= 250 * M], key=lambda d: -d[2])
    assert _table(html) == [c for c, _, _ in within] and "(3 candidates)" in html
    assert f'<option value="{250 * M}" selected>250M</option>' in html and "fid ▼" in html
    assert _table(client.get(f"/searches/{search_id}?front=true&sort=macs").text) == FRONT
    every = client.get(f"/searches/{search_id}?status=&budget=&sort=").text  # the filter form left at "any"
    assert _table(every) == [c for c, _, _ in DONE] + [FAILED, INFEASIBLE, QUEUED]
    assert "No candidate matches this filter." in client.get(f"/searches/{search_id}?front=true&status=failed").text


def test_sort_headers_toggle_the_direction_and_keep_the_filter(client, filled):
    _, search_id = filled
    html = client.get(f"/searches/{search_id}?status=done&sort=macs").text
    hrefs = dict(re.findall(r'<a class="sort" href="([^"#]+)#candidates">([^<]+)</a>', html))
    by_label = {html_lib.unescape(label).split(" ")[0]: html_lib.unescape(href) for href, label in hrefs.items()}
    assert by_label["MACs"] == f"/searches/{search_id}?status=done&sort=macs&desc=1"
    assert by_label["fid"] == f"/searches/{search_id}?status=done&sort=metric%3Afid"


def test_bad_filters_answer_a_page_saying_so(client, filled):
    _, search_id = filled
    for query, words in (("budget=lots", "budget must be a whole number"), ("status=gone", "not a candidate status"),
                         ("sort=bogus", "sort by one of")):
        response = client.get(f"/searches/{search_id}?{query}")
        assert 400 <= response.status_code < 500 and words in html_lib.unescape(response.text), query
        assert response.headers["content-type"].startswith("text/html")


def test_download_links_give_what_the_table_shows(client, filled):
    _, search_id = filled
    html = client.get(f"/searches/{search_id}?status=done&sort=metric:fid").text
    links = {label: html_lib.unescape(href)
             for href, label in re.findall(r'<a href="([^"]+)" download>([a-z]+ [A-Z]+)</a>', html)}
    assert set(links) == {"candidates CSV", "candidates JSON", "front CSV", "front JSON"}
    response = client.get(links["candidates CSV"])
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["config"] for r in rows] == [c for c, _, _ in sorted(DONE, key=lambda d: d[2])]
    front = client.get(links["front JSON"]).json()
    assert [p["config"] for p in front["front"]] == FRONT
    assert client.get(f"/searches/{search_id}/front.xml").status_code == 400


# -- the interactive front ------------------------------------------------------------------------------------
def _chart(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="front-data">(.*?)</script>', html, re.S)
    assert match, "no chart data on the page"
    return json.loads(match.group(1))


def test_chart_data_has_every_finished_candidate_the_axes_and_the_teacher(client, filled):
    workspace, search_id = filled
    add_teacher(workspace, search_id)
    add_finals(workspace, search_id)
    html = client.get(f"/searches/{search_id}").text
    assert '<svg class="front"' in html  # kept for readers without JavaScript
    assert '<script src="/static/vendor/plotly.min.js" defer></script>' in html
    chart = _chart(html)
    columns = chart["columns"]
    assert columns["config"] == [c for c, _, _ in DONE] + [FAILED, INFEASIBLE]  # the queued one has no point yet
    assert columns["status"] == ["done"] * 6 + ["failed", "infeasible"]
    assert columns["metrics"]["fid"] == [fid for _, _, fid in DONE] + [None, None]
    assert [c for c, on in zip(columns["config"], columns["on_front"]) if on] == FRONT == chart["front"]
    assert columns["href"][0] == f"/searches/{search_id}/candidates/{DONE[0][0]}"
    latency = dict(zip(columns["config"], columns["latency_ms"]))
    assert latency[FINALS[0][0]] == FINAL_FIGURES["latency_ms"] and latency[DONE[0][0]] is None
    assert [a["key"] for a in chart["axes"]] == ["macs", "params", "latency_ms", "metric:fid", "metric:kid"]
    assert (chart["x"], chart["y"], chart["budgets"]) == ("macs", "metric:fid", [250 * M, 500 * M])
    assert chart["teacher"] == {"macs": 5000 * M, "params": 20_000, "latency_ms": FINAL_FIGURES["teacher_latency_ms"],
                                "metrics": {"fid": TEACHER_FID, "kid": 0.04}}


def test_chart_data_cannot_close_its_script(client, filled):
    workspace, search_id = filled
    with Store(workspace.database_url) as store:
        store.add_candidates(search_id, [("1_1", 1, 1, "infeasible", None, "</script><script>alert(1)</script>")])
    html = client.get(f"/searches/{search_id}").text
    assert "alert(1)</script>" not in html and _chart(html)["columns"]["error"][-1].startswith("</script>")


def test_plotly_bundle_is_served_here_and_without_the_login(filled):
    with local_client(create_web_app(filled[0], token=TOKEN)) as client:
        bundle = client.get(pages.PLOTLY_URL)
        assert bundle.status_code == 200 and bundle.headers["content-type"].startswith("text/javascript")
        assert b"plotly" in bundle.content[:2000].lower() and len(bundle.content) > 1_000_000
        assert client.get("/static/front.js").status_code == 200
        assert client.get("/searches").status_code == 401  # the pages still need it


# -- comparing searches ---------------------------------------------------------------------------------------
def _second_search(workspace, metric="fid", fids=(30.0, 90.0), budgets=(600 * M,)):
    """Another search of the supernet: two done candidates (200M and 400M MACs) with ``fids``."""
    with Store(workspace.database_url) as store:
        search = store.create_search("tiny", budgets=list(budgets), objectives=[metric], strategy="evolution",
                                     trials=4, seed=2, max_attempts=1)
        store.add_candidates(search.id, [("16_16_8_8_8_8_8_8", 200 * M, 10), ("16_16_16_8_8_8_8_8", 400 * M, 11)])
        for candidate, fid in zip(store.lease_candidates(search.id, "w", 2, 60), fids):
            store.complete_candidate(candidate.id, "w", {metric: fid}, "e", 1.0)
    return search.id


def test_compare_overlays_fronts_with_hypervolumes_under_one_reference(client, filled):
    from nas.pareto import hypervolume

    workspace, first = filled
    add_teacher(workspace, first)
    second = _second_search(workspace)
    response = client.get(f"/compare?search={first}&search={second}")
    assert response.status_code == 200
    html = response.text
    chart = json.loads(re.search(r'id="compare-data">(.*?)</script>', html, re.S).group(1))
    reference = (600 * M * 1.0001, 1.1 * 90.0)  # the largest budget of both; 1.1 x the worst fid of both
    assert chart["reference_point"] == pytest.approx(list(reference))
    fronts = {s["id"]: s for s in chart["searches"]}
    expected = {first: [(c, m, f) for c, m, f in DONE if c in FRONT], second: [("16_16_8_8_8_8_8_8", 200 * M, 30.0)]}
    for sid, members in expected.items():
        assert fronts[sid]["front"] == [[m, f] for _, m, f in members]
        assert fronts[sid]["hypervolume"] == pytest.approx(
            hypervolume([(m, f) for _, m, f in members], reference, ["minimize", "minimize"]))
    assert fronts[first]["teacher"] == {"macs": 5000 * M, "value": TEACHER_FID} and fronts[second]["teacher"] is None
    assert f'href="/compare?search={first}&amp;search={second}" id="compare-link"' in html
    assert html.count('<tr>\n  <td><a href="/searches/') == 2  # the table, for readers without JavaScript


def test_compare_refuses_different_metrics_and_unknown_searches_in_words(client, filled):
    workspace, first = filled
    other = _second_search(workspace, metric="psnr", fids=(20.0, 25.0))
    with Store(workspace.database_url) as store:
        before = store.list_searches()
    for query, status, words in (
            (f"search={first}&search={other}", 400, f"different metrics (search {first} fid, search {other} psnr)"),
            (f"search={first}&search=77", 404, "no search with id 77"),
            (f"search={first}&search=seven", 400, "'seven' is not a search id")):
        response = client.get(f"/compare?{query}")
        text = html_lib.unescape(response.text)
        assert response.status_code == status and words in text, (query, text[:400])
        assert 'id="compare-data"' not in text and 'name="search"' in text  # the choice is offered again
    text = html_lib.unescape(client.get(f"/compare?search={first}&search={other}").text)
    assert f"fid: searches {first}; psnr: searches {other}" in text
    with Store(workspace.database_url) as store:
        assert store.list_searches() == before


def test_searches_list_offers_the_comparison(client, filled):
    _, search_id = filled
    html = client.get("/searches").text
    assert '<form method="get" action="/compare"' in html and f'name="search" value="{search_id}"' in html
    assert client.get("/compare").status_code == 200
