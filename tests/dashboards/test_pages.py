"""The dashboard pages render what the store holds: lists, the search page's SVG front, candidates."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

import dashboards.pages as pages
from nas.store import Store
from tests.nas.test_service import DONE, FAILED, FRONT, INFEASIBLE, QUEUED, SHA

SVG = "{http://www.w3.org/2000/svg}"


def _svg(html: str) -> ET.Element:
    match = re.search(r"<svg class=\"front\".*?</svg>", html, re.S)
    assert match, "no front chart on the page"
    return ET.fromstring(match.group(0))


def test_home_redirects_and_static_css(client):
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 307 and home.headers["location"] == "/searches"
    css = client.get("/static/style.css")
    assert css.status_code == 200 and "svg.front" in css.text


def test_supernets_page(client):
    html = client.get("/supernets").text
    assert "tiny" in html and "channels-16" in html and "/nowhere/sn.pt" in html and SHA[:12] in html
    assert 'href="/searches?supernet=tiny">1</a>' in html


def test_searches_page_shows_state_and_progress(client, filled):
    _, search_id = filled
    html = client.get("/searches").text
    assert f'href="/searches/{search_id}"' in html and 'class="state created"' in html
    assert "8 / 10" in html and 'style="width: 80.0%"' in html and "250M, 500M" in html
    assert 'http-equiv="refresh"' not in html
    assert "No search matches" in client.get("/searches?state=running").text


def test_search_page_front_chart(client, filled):
    _, search_id = filled
    response = client.get(f"/searches/{search_id}")
    assert response.status_code == 200
    svg = _svg(response.text)
    links = {a.get("href"): a.find(f"{SVG}circle").get("class") for a in svg.iter(f"{SVG}a")}
    assert links == {f"/searches/{search_id}/candidates/{c}": "member" if c in FRONT else "point" for c, _, _ in DONE}
    assert len([line for line in svg.iter(f"{SVG}line") if line.get("class") == "budget"]) == 2 + 1  # + legend
    assert [p.get("d") for p in svg.iter(f"{SVG}path") if p.get("class") == "step"][0].startswith("M")
    html = response.text
    assert "Hypervolume 12,452,150,000 MACs" in html and "4 on the front" in html  # by hand in test_service
    best = html[html.index("Best per budget"):html.index('id="candidates"')]
    assert best.index("12_8_8_8_8_8_8_8") < best.index("8_8_12_8_8_8_8_8")
    table = html[html.index('id="candidates"'):]
    for config in [c for c, _, _ in DONE] + [FAILED, INFEASIBLE, QUEUED]:
        assert f">{config}</code>" in table
    assert "RuntimeError: out of memory" in table and "page 1 of 1 (9 candidates)" in table
    assert 'http-equiv="refresh"' not in html  # not running


def test_running_search_page_refreshes_itself(client, filled):
    workspace, search_id = filled
    with Store(workspace.database_url) as store:
        store.set_search_state(search_id, "running")
    assert f'<meta http-equiv="refresh" content="{pages.REFRESH_SECONDS}">' in client.get(f"/searches/{search_id}").text


def test_candidate_table_filters_and_pages(client, filled, monkeypatch):
    _, search_id = filled
    monkeypatch.setattr(pages, "PAGE_SIZE", 4)
    second = client.get(f"/searches/{search_id}?page=2").text
    table = second[second.index('id="candidates"'):]
    shown = re.findall(r">([0-9_]+)</code></a></td>\s*<td><span class=\"chip", table)
    assert shown == [DONE[4][0], DONE[5][0], FAILED, INFEASIBLE]
    assert "page 2 of 3" in table and f'href="/searches/{search_id}?page=3#candidates"' in table
    assert f'href="/searches/{search_id}#candidates">← previous' in table
    done = client.get(f"/searches/{search_id}?status=infeasible").text
    assert "page 1 of 1 (1 candidates)" in done and "over budget" in done
    assert client.get(f"/searches/{search_id}?status=bogus").status_code == 422


def test_candidate_page(client, filled):
    workspace, search_id = filled
    config = FRONT[1]  # 12_8_8_8_8_8_8_8: 150M MACs, fid 60
    html = client.get(f"/searches/{search_id}/candidates/{config}").text
    assert f"<code>{config}</code>" in html and "150M" in html and "150,000,000" in html
    assert "fid/inception@sha256:0123" in html and "worker-1" in html and "1.25 s" in html
    assert re.search(r"<th>fid</th><td class=\"num\">60</td>", html)
    assert re.search(r"<td>0</td><td>stem</td><td class=\"num\"><strong>12</strong></td>", html)
    assert "No sample image" in html and "<img" not in html
    folder = workspace.samples_dir(search_id)
    folder.mkdir(parents=True)
    Image.fromarray(np.full((4, 8, 3), 200, np.uint8)).save(folder / f"{config}.png")
    html = client.get(f"/searches/{search_id}/candidates/{config}").text
    src = f"/searches/{search_id}/candidates/{config}/sample.png"
    assert f'<img class="sample" src="{src}"' in html
    image = client.get(src)
    assert image.status_code == 200 and image.content == (folder / f"{config}.png").read_bytes()


def test_missing_things_give_html_404(client, filled):
    _, search_id = filled
    for url in ("/searches/99", f"/searches/{search_id}/candidates/1_2_3", f"/searches/{search_id}/candidates/"
                f"{FRONT[0]}/sample.png"):
        response = client.get(url)
        assert response.status_code == 404 and response.headers["content-type"].startswith("text/html"), url
        assert "Error 404" in response.text


def test_pages_escape_stored_text(client, filled):
    workspace, _ = filled
    with Store(workspace.database_url) as store:
        store.register_supernet("<script>alert(1)</script>", architecture="unet", space="unet64-channels-32",
                                checkpoint="c", checkpoint_sha256=SHA)
    html = client.get("/supernets").text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_search_page_shows_the_plan_of_a_search_made_by_search_setup(client):
    made = client.post("/api/searches", json={"supernet": "tiny", "budgets": ["40M"], "metric": "psnr",
                                              "strategy": "evolution", "trials": 5, "batch_size": 4,
                                              "strategy_settings": {"population_size": 4}})
    assert made.status_code == 201, made.text
    html = client.get(f"/searches/{made.json()['id']}").text
    assert "population_size 4" in html and "psnr on split train2 of" in html and "(32 px, 4 sample rows)" in html
    assert "4 configs asked and evaluated together; MACs counted at 32x32" in html
    assert "No candidate has a psnr value yet." in html and "<svg" not in html
