"""Browsing fronts in the dashboard: the candidates table (filtered, sorted and paged by the database, CSV / JSON
downloads), the interactive front's data, comparisons of searches, and actions from the search page (the same
pages in a real browser: tests/dashboards/test_browser.py)."""
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
                                    TOKEN, add_finals, add_teacher, kill_launched, local_client, sleeper)
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
    assert chart["candidates_url"] == f"/searches/{search_id}/candidates/"  # + the config: a point's page
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


# -- actions from the search page -----------------------------------------------------------------------------
@pytest.fixture
def acting(filled):
    """The web app over `filled` with a stand-in orchestrator command (nothing really runs)."""
    app = create_web_app(filled[0], command=sleeper)
    with local_client(app) as test_client:
        yield filled[0], filled[1], test_client
    kill_launched(app)


def _action_forms(html: str) -> dict[str, dict[str, str]]:
    """Each action form of a search page: its name -> the fields a browser would send."""
    forms = {}
    for form in re.findall(r'<form class="inline action".*?</form>', html, re.S):
        name = re.search(r'name="action" value="([a-z]+)"', form).group(1)
        fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', form))
        fields.update(dict(re.findall(r'<input type="number" name="([a-z_]+)" min="1" value="([^"]*)"', form)))
        forms[name] = {"action": re.search(r'action="([^"]+)"', form).group(1), **fields}
    return forms


def _post(client, form, **changes):
    data = {k: v for k, v in {**form, **changes}.items() if k != "action"}
    return client.post(form["action"], data=data, follow_redirects=False)


def _state(workspace, search_id):
    with Store(workspace.database_url) as store:
        return store.get_search(search_id)


def test_start_pause_resume_cancel_from_the_page(acting):
    workspace, search_id, client = acting
    forms = _action_forms(client.get(f"/searches/{search_id}").text)
    assert set(forms) == {"start", "cancel"}  # what a created search allows
    started = _post(client, forms["start"], workers="3", executor="local")
    assert started.status_code == 303 and started.headers["location"] == f"/searches/{search_id}"
    assert _state(workspace, search_id).state.value == "running"
    assert client.app.state.ganas.launcher.info(search_id).command[-1] == "workers=3"
    forms = _action_forms(client.get(f"/searches/{search_id}").text)
    assert set(forms) == {"resume", "pause", "cancel"} and forms["pause"]["seen_state"] == "running"
    assert _post(client, forms["pause"]).status_code == 303
    assert _state(workspace, search_id).state.value == "paused"
    forms = _action_forms(client.get(f"/searches/{search_id}").text)
    assert _post(client, forms["cancel"]).status_code == 303
    page = client.get(f"/searches/{search_id}").text
    assert _action_forms(page) == {} and "A cancelled search takes no action" in page


def test_a_stale_page_or_a_refused_action_changes_nothing(acting):
    workspace, search_id, client = acting
    with Store(workspace.database_url) as store:
        store.set_search_state(search_id, "running")
    forms = _action_forms(client.get(f"/searches/{search_id}").text)
    with Store(workspace.database_url) as store:  # another client pauses it after the page was loaded
        store.set_search_state(search_id, "paused")
    before = _state(workspace, search_id)
    stale = _post(client, forms["pause"])
    text = html_lib.unescape(stale.text)
    assert stale.status_code == 409 and "text/html" in stale.headers["content-type"]
    assert f"search {search_id} is paused now, not running: someone changed it after this page was loaded" in text
    refused = _post(client, forms["pause"], seen_state="paused")  # the page's own state, but pause needs running
    assert refused.status_code == 409 and "cannot pause search" in html_lib.unescape(refused.text)
    for data, headers, status, words in (({"form_token": ""}, {}, 403, "form token"),
                                         ({}, {"origin": "https://evil.example"}, 403, "evil.example"),
                                         ({"workers": "0"}, {}, 422, "workers"),
                                         ({"executor": "slurm"}, {}, 422, "unknown executor")):
        form = {**forms["resume"], "seen_state": "paused", **data}
        response = client.post(form.pop("action"), data=form, headers=headers, follow_redirects=False)
        assert response.status_code == status and words in html_lib.unescape(response.text), (data, response.text)
    unknown = client.post(f"/searches/{search_id}/actions/explode", data={**forms["pause"], "seen_state": "paused"},
                          follow_redirects=False)
    assert unknown.status_code == 409 and "explode" in html_lib.unescape(unknown.text)
    assert _state(workspace, search_id) == before and client.app.state.ganas.launcher.info(search_id) is None


def test_compare_refuses_teacher_fidelity_fronts_against_different_teachers(client, filled):
    """teacher-ssim of an OMGD supernet (its own online teacher) and of another supernet (another teacher) measure
    different things: refused in words; searches of one supernet compare as before."""
    workspace, _ = filled
    with Store(workspace.database_url) as store:
        tiny = store.get_supernet("tiny")
        for name, sha in (("with-a", "a" * 64), ("with-b", "b" * 64)):
            store.register_supernet(name, architecture=tiny.architecture, space=tiny.space,
                                    checkpoint=tiny.checkpoint, checkpoint_sha256=tiny.checkpoint_sha256,
                                    hparams=dict(tiny.hparams), dataset=dict(tiny.dataset), metrics=["teacher-ssim"],
                                    teacher={"path": f"{name}.pt", "sha256": sha, "architecture": "resnet", "hparams": {},
                                             "macs": 1, "params": 1, "size": [32, 32]})
        ids = []
        for name in ("with-a", "with-b", "with-a"):
            search = store.create_search(name, budgets=[600 * M], objectives=["teacher-ssim"], strategy="random",
                                         trials=2, seed=1, max_attempts=1)
            store.add_candidates(search.id, [("16_16_8_8_8_8_8_8", 200 * M, 10)])
            for candidate in store.lease_candidates(search.id, "w", 1, 60):
                store.complete_candidate(candidate.id, "w", {"teacher-ssim": 0.5}, "e", 1.0)
            ids.append(search.id)
    response = client.get(f"/compare?search={ids[0]}&search={ids[1]}")
    text = html_lib.unescape(response.text)
    assert response.status_code == 400 and "these searches have different teachers" in text, text[:400]
    assert client.get(f"/compare?search={ids[0]}&search={ids[2]}").status_code == 200
