"""The dashboard pages render what the store holds: lists, the search page's SVG front, candidates."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

import dashboards.pages as pages
from nas.store import Store
from tests.nas.test_service import (BASE_URL, DONE, FAILED, FINAL_FILES, FINALS, FRONT, INFEASIBLE, M, QUEUED, SHA,
                                    add_finals, add_teacher, fill_workspace, kill_launched, local_client, sleeper)
from webapp.app import create_web_app

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


# -- the teacher and the final models ----------------------------------------------------------------------------
def test_search_page_draws_the_teacher_and_its_ratios(client, filled):
    workspace, search_id = filled
    html = client.get(f"/searches/{search_id}").text
    assert "records no teacher" in html and 'class="teacher"' not in html and "× fewer" not in html
    add_teacher(workspace, search_id)
    html = client.get(f"/searches/{search_id}").text
    svg = _svg(html)
    line = [e for e in svg.iter(f"{SVG}line") if e.get("class") == "teacher"][0]
    assert line.get("y1") == line.get("y2") and float(line.get("x1")) == 72.0
    label = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "teacher-label"]
    assert label == ["teacher: fid 40 at 5G MACs (off the chart, to the right)"]
    assert "resnet, 5G MACs, 20,000 parameters" in html and "on split train2" in html
    best = html[html.index("<h2>Best per budget"):html.index('id="finals"')]
    # 12_8_8_8_8_8_8_8: 5000M / 150M = 33.3x fewer, fid 60 / 40 = 1.5x (+20); 8_8_12_8_8_8_8_8: 11.1x, 45/40
    assert "33.3× fewer" in best and "1.5× (+20)" in best and "11.1× fewer" in best and "1.12× (+5)" in best
    front = html[html.index("<th>Front member"):html.index("<h2>Best per budget")]
    rows = re.findall(r"<code>([0-9_]+)</code>.*?([0-9.]+)× fewer.*?([0-9.]+)× \(\+([0-9.]+)\)", front, re.S)
    assert rows == [("8_8_8_8_8_8_8_8", "50", "2", "40"), ("12_8_8_8_8_8_8_8", "33.3", "1.5", "20"),
                    ("8_12_8_8_8_8_8_8", "16.7", "1.25", "10"), ("8_8_12_8_8_8_8_8", "11.1", "1.12", "5")]
    assert 'class="worse"' in front  # fid is minimised: above the teacher's is worse


def test_candidate_page_compares_with_the_teacher(client, filled):
    workspace, search_id = filled
    config = FRONT[1]
    html = client.get(f"/searches/{search_id}/candidates/{config}").text
    assert "records no teacher" in html and "generated by the teacher" not in html
    add_teacher(workspace, search_id)
    folder = workspace.samples_dir(search_id)
    folder.mkdir(parents=True)
    Image.fromarray(np.full((4, 8, 3), 200, np.uint8)).save(folder / f"{config}.png")
    html = client.get(f"/searches/{search_id}/candidates/{config}").text
    assert "33.3× fewer</span> than the teacher's 5G" in html and "20× fewer</span> than the teacher's 20,000" in html
    assert re.search(r"<th>fid</th><td class=\"num\">60</td>\s*<td class=\"num\">40</td><td class=\"num\">"
                     r"<span class=\"worse\"[^>]*>1.5× \(\+20\)</span>", html)
    assert "input | generated by the teacher | generated by this subnet | target" in html


def test_supernets_page_shows_the_teacher(client, filled):
    assert "none recorded" in client.get("/supernets").text
    add_teacher(*filled)
    html = client.get("/supernets").text
    assert "resnet, 5G MACs, 20,000 params" in html and str(filled[0].root / "teacher.pt") in html


def test_final_models_table_and_downloads(client, filled):
    workspace, search_id = filled
    assert "No final model yet." in client.get(f"/searches/{search_id}").text
    add_teacher(workspace, search_id)
    add_finals(workspace, search_id)
    html = client.get(f"/searches/{search_id}").text
    finals = html[html.index('id="finals"'):html.index('id="candidates"')]
    rows = finals.split("<tr>")[2:]
    assert [re.search(r"<code>([0-9_]+)</code>", r).group(1) for r in rows] == [c for c, _, _ in FINALS]
    done = rows[0]
    assert "250M" in done and "200 steps" in done and "33.3× fewer" in done  # 5G / 150M
    assert "fid 70 → <strong>50</strong>" in done and "(teacher 45)" in done and "1.11× (+5)" in done
    assert "<td>val</td>" in done and "4.0 ms" in done and "7.5× faster" in done  # 30 ms / 4 ms
    assert "models:/ganas-tiny/1" in done and 'class="chip done"' in done
    links = re.findall(r'href="([^"]+/files/[a-z0-9]+)"', done)
    assert links == [f"/searches/{search_id}/finals/{FINALS[0][0]}/files/{k}" for k in ("checkpoint", "onnx")]
    for link, data in zip(links, FINAL_FILES.values()):
        response = client.get(link)
        assert response.status_code == 200 and response.content == data
    assert "RuntimeError: export failed" in rows[1] and 'class="chip queued"' in rows[2]
    assert client.get(f"/searches/{search_id}/finals/{FINALS[0][0]}/files/pt2").status_code == 404
    for kind in ("..%2F..%2Fganas.db", ".."):
        assert client.get(f"/searches/{search_id}/finals/{FINALS[0][0]}/files/{kind}").status_code == 404
    unknown = client.get(f"/searches/{search_id}/finals/{FINALS[0][0]}/files/weights")
    assert unknown.status_code == 404 and "text/html" in unknown.headers["content-type"]


def _form(html: str) -> dict[str, str]:
    form = html[html.index('<form class="inline"'):html.index("</form>")]
    return {"form_token": re.search(r'name="form_token" value="([0-9a-f]+)"', form).group(1),
            "action": re.search(r'action="([^"]+)"', form).group(1)}


@pytest.fixture
def finalizable(tmp_path):
    """A done search with a real supernet checkpoint and teacher, served with a stand-in finalizer command."""
    workspace, search_id = fill_workspace(tmp_path / "ws", checkpoint=b"supernet-weights", plan=True)
    add_teacher(workspace, search_id)
    with Store(workspace.database_url) as store:
        store.set_search_state(search_id, "running")
        store.set_search_state(search_id, "done")
    app = create_web_app(workspace, command=sleeper)
    with local_client(app) as test_client:
        yield workspace, search_id, test_client
    kill_launched(app)


def test_finalize_form_starts_the_finalizer(finalizable):
    workspace, search_id, client = finalizable
    form = _form(client.get(f"/searches/{search_id}").text)
    assert form["action"] == f"/searches/{search_id}/finalize"
    body = {"form_token": form["form_token"], "steps": "25", "budget": str(250 * M), "workers": "3",
            "executor": "local", "recipe": "online"}
    posted = client.post(form["action"], data=body, follow_redirects=False)
    assert posted.status_code == 303, posted.text
    assert posted.headers["location"] == f"/searches/{search_id}#finals"
    launch = client.app.state.ganas.launcher.info(search_id)
    assert launch.job == "finalizer" and launch.command[-1] == "workers=3"
    page = client.get(f"/searches/{search_id}").text
    assert "A finalizer is running" in page and 'http-equiv="refresh"' in page
    assert f"finalizer started here: pid {launch.pid}, running" in page
    again = client.post(form["action"], data=body, follow_redirects=False)
    assert again.status_code == 409 and "already has a finalizer running" in again.text


def test_finalize_form_refuses_forged_and_bad_posts(finalizable):
    workspace, search_id, client = finalizable
    form = _form(client.get(f"/searches/{search_id}").text)
    ok = {"form_token": form["form_token"], "steps": "25"}
    cases = [({"steps": "25"}, {}, 403, "form token"),
             ({**ok, "form_token": "0" * 64}, {}, 403, "form token"),
             (ok, {"origin": "https://evil.example"}, 403, "posted from https://evil.example"),
             (ok, {"sec-fetch-site": "cross-site"}, 403, "from another site"),
             ({**ok, "steps": "0"}, {}, 422, "steps must be a positive integer"),
             ({**ok, "steps": "many"}, {}, 422, "steps must be a whole number"),
             ({**ok, "executor": "slurm"}, {}, 422, "unknown executor"),
             ({**ok, "recipe": "distil"}, {}, 422, "is not a fine-tuning recipe"),
             ({**ok, "budget": str(50 * M)}, {}, 400, "fits 50M MACs")]
    for data, headers, status, message in cases:
        response = client.post(form["action"], data=data, headers=headers, follow_redirects=False)
        assert response.status_code == status, (data, headers, response.text)
        assert message in response.text and "text/html" in response.headers["content-type"], (data, headers)
    other = client.post(f"/searches/{search_id + 1}/finalize", data=ok, follow_redirects=False)
    assert other.status_code in (403, 404)  # a token is good for its own search only
    assert client.app.state.ganas.launcher.info(search_id) is None
    assert not (workspace.search_dir(search_id) / "finalize.log").exists()
    same_site = client.post(form["action"], data=ok, headers={"origin": BASE_URL,
                                                              "sec-fetch-site": "same-origin"},
                            follow_redirects=False)
    assert same_site.status_code == 303


@pytest.mark.parametrize("ratio, text", [(None, ""), (1.5, "1.5×"), (100 / 3, "33.3×"), (56.8e9 / 20e6, "2,840×"),
                                         (0.8, "0.8×")])
def test_ratios_are_written_for_people(ratio, text):
    assert pages._times(ratio) == text


def test_the_finalize_forms_recipes_are_the_registered_ones():
    """The form lists its recipes by hand (the dashboard does not import torch): it must name every registered one."""
    import re
    from pathlib import Path

    from distill.jobs import FINETUNE_RECIPES

    page = (Path(__file__).parents[2] / "dashboards" / "templates" / "search.html").read_text()
    select = re.search(r'<select name="recipe">(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'<option value="([^"]+)"', select) == list(FINETUNE_RECIPES.names())
