"""The dashboard in a real browser: Debian's chromium driven by selenium, against a server on a real socket.

Loads the searches list, a comparison, a search and a candidate from a seeded store; counts the points of the
interactive front, reads a hover text, clicks through to a candidate, switches an axis, and pauses a running search
from its page.
Skipped only when chromium or its driver is not installed (``apt-get install chromium chromium-driver``; .ci/run
installs them). With ``GANAS_SCREENSHOTS=DIR`` it saves the screenshots there (``docs/images`` for the README).
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nas.store import Store
from tests.dashboards.test_browse import _second_search
from tests.nas.test_service import DONE, FRONT, add_finals, add_teacher, fill_workspace, sleeper
from webapp.app import create_web_app

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium "
                                       "chromium-driver); not installed here")
WAIT = 10.0  # seconds a page may take to draw


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A seeded workspace served by uvicorn on a free 127.0.0.1 port, as `ganas serve` serves it."""
    import uvicorn

    workspace, search_id = fill_workspace(tmp_path_factory.mktemp("browser") / "ws")
    add_teacher(workspace, search_id)
    add_finals(workspace, search_id)
    second = _second_search(workspace)
    folder = workspace.samples_dir(search_id)
    folder.mkdir(parents=True)
    grid = np.zeros((64, 256, 3), np.uint8)
    for column, shade in enumerate((60, 120, 180, 240)):  # input | teacher | subnet | target
        grid[:, column * 64:(column + 1) * 64] = shade
    Image.fromarray(grid).save(folder / f"{FRONT[1]}.png")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_web_app(workspace, command=sleeper), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield workspace, search_id, second, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(WAIT)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1800", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


def _wait(driver, script: str):
    """The value of ``script`` once it is truthy (the chart drawn, the page loaded)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}")


def _screenshot(driver, name: str, element=None) -> None:
    """Save ``element`` (default: the page's <main>) as ``name`` under $GANAS_SCREENSHOTS, if set."""
    from selenium.webdriver.common.by import By

    folder = os.environ.get("GANAS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (element or driver.find_element(By.TAG_NAME, "main")).screenshot(str(Path(folder) / name))


def _errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]


def test_browse_compare_hover_click_and_pause(served, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    workspace, search_id, second, url = served
    # the searches list: choose both searches and compare them
    browser.get(f"{url}/searches")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#compare-form tbody tr")) == 2
    _screenshot(browser, "dashboard-searches.png")
    for box in browser.find_elements(By.CSS_SELECTOR, "#compare-form input[name=search]"):
        box.click()
    browser.find_element(By.CSS_SELECTOR, "#compare-form button[type=submit]").click()
    traces = _wait(browser, "const e = document.getElementById('compare-chart');"
                            "return e && e.data && e.data.map(t => [t.meta, t.x.length]);")
    assert browser.current_url == f"{url}/compare?search={search_id}&search={second}"
    assert sorted(n for meta, n in traces if meta == "points") == [2, len(DONE)]
    assert [n for meta, n in traces if meta == "teacher"] == [1]
    _screenshot(browser, "dashboard-compare.png")

    # the search page: the interactive front replaces the SVG, one point per finished candidate
    browser.get(f"{url}/searches/{search_id}")
    traces = dict(_wait(browser, "const e = document.getElementById('front-chart');"
                                 "return e && e.data && e.data.map(t => [t.meta, t.x.length]);"))
    assert (traces["member"], traces["done"], traces["failed"], traces["infeasible"]) == (len(FRONT), 2, 1, 1)
    assert not browser.find_element(By.ID, "front-static").is_displayed()
    # hover the front member 12_8_8_8_8_8_8_8 (150M MACs, fid 60; teacher 5G MACs, fid 40)
    index = browser.execute_script(
        "const t = document.getElementById('front-chart').data.find(t => t.meta === 'member');"
        f"return t.hovertext.findIndex(h => h.includes('{FRONT[1]}'));")
    markers = browser.find_elements(By.CSS_SELECTOR, ".scatterlayer .trace .points path")
    assert len(markers) == len(DONE) + 2 + 1  # every finished candidate's marker, and the teacher's
    member_trace = browser.execute_script(
        "return document.getElementById('front-chart').data.findIndex(t => t.meta === 'member');")
    target = browser.find_elements(By.CSS_SELECTOR, ".scatterlayer .trace")[member_trace] \
        .find_elements(By.CSS_SELECTOR, ".points path")[index]
    ActionChains(browser).move_to_element(target).perform()
    hover = _wait(browser, "const h = document.querySelector('.hoverlayer .hovertext'); return h && h.textContent;")
    assert FRONT[1] in hover and "MACs 150M (33.3× fewer than the teacher)" in hover
    assert "fid 60 (1.5× the teacher's 40)" in hover
    assert "latency 4.00 ms (7.5× faster than the teacher)" in hover  # its final model's
    assert "params 1,001 (20× fewer than the teacher)" in hover
    _screenshot(browser, "dashboard-search.png", browser.find_element(By.ID, "front-interactive"))
    # click-through to the candidate's page
    ActionChains(browser).move_to_element(target).click().perform()
    _wait(browser, f"return location.pathname === '/searches/{search_id}/candidates/{FRONT[1]}';")
    image = _wait(browser, "const i = document.querySelector('img.sample'); return i && i.complete && i.naturalWidth;")
    assert image == 256 and "input | generated by the teacher | generated by this subnet | target" in browser.page_source
    _screenshot(browser, "dashboard-candidate.png")

    # the axis selector: parameters on x, kept when the page reloads (a running search's page does)
    browser.get(f"{url}/searches/{search_id}")
    _wait(browser, "const e = document.getElementById('front-chart'); return e && e.data;")
    Select(browser.find_element(By.ID, "front-x")).select_by_value("params")
    params = "return document.getElementById('front-chart').data.find(t => t.meta === 'member').x;"
    assert _wait(browser, params) == [1000 + i for i, (c, _, _) in enumerate(DONE) if c in FRONT]
    browser.refresh()
    _wait(browser, "const e = document.getElementById('front-chart'); return e && e.data;")
    assert browser.find_element(By.ID, "front-x").get_attribute("value") == "params"
    assert browser.execute_script("return document.getElementById('front-chart').layout.xaxis.title.text;") \
        == "parameters"

    # pause a running search from its page (running only now: its page reloads itself every 5 s)
    with Store(workspace.database_url) as store:
        store.set_search_state(search_id, "running")
    browser.get(f"{url}/searches/{search_id}")
    browser.find_element(By.CSS_SELECTOR, "form.action button[value=pause]").click()
    _wait(browser, "const s = document.querySelector('h1 .state'); return s && s.textContent === 'paused';")
    with Store(workspace.database_url) as store:
        assert store.get_search(search_id).state.value == "paused"
    assert _errors(browser) == []
