"""The search page's candidates table: filtered, sorted and paged by the database, with CSV / JSON downloads."""
from __future__ import annotations

import csv
import html as html_lib
import io
import re

from tests.nas.test_service import DONE, FAILED, FRONT, INFEASIBLE, M, QUEUED


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
