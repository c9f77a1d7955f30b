"""The leaderboard site in a real headless Chromium (Debian's chromium + chromium-driver,
driven by selenium) on a generated NSD-sized leaderboard (40 models x 16 regions x 4
subjects x 4 metrics, plus simulated data): it loads, sorts, filters by the model taxonomy
(kept in the URL across a reload), expands a dataset into regions and subjects, opens a
model, compares two columns, downloads what it shows, and keeps the headline columns (rank,
model, mean, CI) on screen at 1400 px and on a 390 px phone. `brainrank serve` runs as a
real subprocess; one browser is shared by the module's tests.

Screenshots go to $BRAINRANK_SCREENSHOTS (a folder) when set, else to pytest's tmp folder.
Skips, saying why, only where selenium or the browser is not installed (`make
browser-deps` installs the browser with apt-get)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nsd_like_leaderboard as generated
import pytest

CHROMIUM = os.environ.get("BRAINRANK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("BRAINRANK_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1400,1000",
]
N_MODELS = 40


def _requirements() -> None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[test]'")
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) or shutil.which(path)):
            pytest.skip(
                f"{path} is missing: install Debian's {package} (`make browser-deps`, or "
                "apt-get install chromium chromium-driver)"
            )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _requirements()
    db = tmp_path_factory.mktemp("site") / "lb.db"
    generated.build(db)
    proc = subprocess.Popen(
        [sys.executable, "-m", "brainrank", "serve", "--db", str(db), "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stderr.readline()
    match = re.search(r"http://localhost:(\d+)/", line)
    if match is None:
        proc.kill()
        pytest.fail(f"brainrank serve did not start: {line}{proc.stderr.read()}")
    try:
        yield f"http://127.0.0.1:{match.group(1)}/"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = os.environ.get("BRAINRANK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser(tmp_path_factory, downloads):
    _requirements()
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    try:
        yield driver
    finally:
        driver.quit()


def _wait(condition, timeout=30.0, what="the page"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the DOM is being rebuilt
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} ({last})")


def _open(driver, url: str, width: int = 1400, height: int = 1000) -> None:
    """A fresh page load (a URL that differs only in its #fragment would not reload)."""
    driver.set_window_size(width, height)
    driver.get("about:blank")
    driver.get(url)


def _rows(driver, group: str = "real") -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll(`table.ranking[data-group='${arguments[0]}'] "
        "tbody tr`)].map(r => r.dataset.model)",
        group,
    )


def _loaded(driver, n: int | None = None, group: str = "real"):
    def ready():
        status = driver.find_element("id", "status").text
        rows = _rows(driver, group)
        return rows if "shown" in status and rows and (n is None or len(rows) == n) else None

    return _wait(ready, what=f"{n or 'the'} ranked rows")


def _column(driver, key: str, group: str = "real") -> list[str]:
    """The column's cell texts, without the marker (†) of a flagged cell."""
    texts = driver.execute_script(
        "return [...document.querySelectorAll(`table.ranking[data-group='${arguments[0]}'] "
        "tbody tr`)].map(r => r.querySelector(`td[data-key='${arguments[1]}']`).textContent)",
        group,
        key,
    )
    return [t.replace("\u2020", "").strip() for t in texts]


def _api(server: str, path: str):
    with urllib.request.urlopen(server + path.lstrip("/"), timeout=60) as response:
        return json.loads(response.read())


def test_loads_sorts_and_filters_with_the_filters_in_the_url(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open(browser, server)
    rows = _loaded(browser, N_MODELS)
    ranking = _api(server, "/api/ranking?ci=1")
    real = [r["model"] for r in ranking["rows"] if r["data"] == "real"]
    assert rows == real and rows[0] == "zoo/net00"
    # the header's model count and the status line agree
    assert f"{N_MODELS} models" in browser.find_element(By.ID, "source").text
    assert browser.find_element(By.ID, "status").text.startswith(f"{N_MODELS} of {N_MODELS} models")
    # simulated data: a table of its own, marked
    assert (
        _rows(browser, "simulated")
        and "simulated"
        in browser.find_element(
            By.CSS_SELECTOR, "section.group[data-group='simulated'] h3"
        ).text.lower()
    )
    # baselines are labelled baselines, random networks random
    badge = browser.find_element(By.CSS_SELECTOR, "tr[data-model='baseline/gabor'] .badge").text
    assert badge == "baseline"
    assert (
        browser.find_element(By.CSS_SELECTOR, "tr[data-model='zoo/net00:random'] .badge").text
        == "random"
    )
    # the notes are folded under the table, and say what was compared
    notes = browser.find_element(By.ID, "notes-box")
    assert notes.get_attribute("open") is None
    assert "Per-cell value" in notes.get_attribute("textContent")
    tables = browser.find_element(By.ID, "tables")
    assert notes.location["y"] > tables.location["y"]
    # cells are coloured on a scale, which is shown
    style = browser.find_element(
        By.CSS_SELECTOR, "tr[data-model='zoo/net00'] td.fixed-mean"
    ).get_attribute("style")
    assert "background" in style
    assert browser.find_element(By.CSS_SELECTOR, "#scale .scale-bar").is_displayed()

    # sort by a column, ascending on the second click; the sort is in the URL
    browser.find_element(By.CSS_SELECTOR, "th[data-key='nsd-like/shared/rsa'] button.sort").click()
    values = [float(v) for v in _column(browser, "nsd-like/shared/rsa")]
    assert values == sorted(values, reverse=True)
    browser.find_element(By.CSS_SELECTOR, "th[data-key='nsd-like/shared/rsa'] button.sort").click()
    _wait(
        lambda: [float(v) for v in _column(browser, "nsd-like/shared/rsa")] == sorted(values),
        what="ascending",
    )
    assert "sort=nsd-like" in browser.current_url

    # filter on the taxonomy: only baselines; the filter is kept in the URL and on reload
    Select(browser.find_element(By.ID, "f-tax-kind")).select_by_value("baseline")
    _wait(lambda: sorted(_rows(browser)) == ["baseline/gabor", "baseline/pixels"], what="baselines")
    assert "where=kind%3Abaseline" in browser.current_url
    browser.refresh()
    _wait(lambda: sorted(_rows(browser)) == ["baseline/gabor", "baseline/pixels"], what="reload")
    assert (
        Select(browser.find_element(By.ID, "f-tax-kind")).first_selected_option.text == "baseline"
    )
    assert browser.find_element(By.ID, "status").text.startswith(f"2 of {N_MODELS} models")
    # a second taxonomy field, from the models table: family among trained networks
    _open(browser, server + "#/?where=kind:trained&where=family:transformer")
    shown = _loaded(browser)
    assert shown and all(m.startswith("zoo/") and not m.endswith(":random") for m in shown)
    trans = {r["model"] for r in _api(server, "/api/models")["rows"]
             if r.get("family") == "transformer" and r["kind"] == "trained"}  # fmt: skip
    assert set(shown) == trans


def test_expanding_a_dataset_shows_regions_in_its_order_then_subjects(server, browser):
    from selenium.webdriver.common.by import By

    _open(browser, server)
    _loaded(browser, N_MODELS)
    before = browser.find_elements(By.CSS_SELECTOR, "table.ranking[data-group='real'] th.leaf")
    assert len(before) == 4  # the four metrics
    browser.find_element(
        By.CSS_SELECTOR, "table.ranking[data-group='real'] button[data-dataset]"
    ).click()
    regions = _wait(
        lambda: (
            [
                th.text.strip("▸▾ ")
                for th in browser.find_elements(
                    By.CSS_SELECTOR, "table.ranking[data-group='real'] th.leaf-region"
                )
            ]
            or None
        ),
        what="the regions",
    )
    assert regions == list(generated.REGIONS) * 4  # the dataset's own order, per metric
    # one region's subjects
    key = "nsd-like/shared/srp-ridge|hV4"
    browser.find_element(By.CSS_SELECTOR, f"button[data-expand='{key}']").click()
    subjects = _wait(
        lambda: (
            [th.text for th in browser.find_elements(By.CSS_SELECTOR, "th.leaf-subject")] or None
        ),
        what="the subjects",
    )
    assert subjects == list(generated.SUBJECTS)
    # the values are the ranking API's, not recomputed
    ranking = _api(server, "/api/ranking")
    top = next(r for r in ranking["rows"] if r["model"] == "zoo/net00")
    shown = browser.find_element(
        By.CSS_SELECTOR, f"tr[data-model='zoo/net00'] td[data-key='{key}|subj05']"
    ).text
    assert float(shown) == pytest.approx(
        top["cells"]["nsd-like/shared/srp-ridge"]["subjects"]["hV4"]["subj05"], abs=5e-4
    )
    assert "open=" in browser.current_url  # expansions are kept in the URL


def test_model_page_curves_pivot_and_provenance(server, browser):
    from selenium.webdriver.common.by import By

    _open(browser, server + "#/model/zoo%2Fnet10")
    _wait(lambda: browser.find_elements(By.ID, "curve-chart"), what="the layer curves")
    series = json.loads(browser.find_element(By.ID, "curve-chart").get_attribute("data-series"))
    assert series == list(generated.REGIONS)  # one curve per region, in the dataset's order
    colours = browser.execute_script(
        "return Chart.getChart(document.getElementById('curve-chart')).data.datasets.map(d => d.borderColor)"
    )
    assert len(set(colours)) == len(generated.REGIONS)  # 16 colours, none repeated
    axes = browser.execute_script(
        "const c = Chart.getChart(document.getElementById('curve-chart'));"
        "return [c.options.scales.x.title.text, c.options.scales.y.title.text]"
    )
    assert "depth" in axes[0] and "score" in axes[1]
    # ROI x subject pivot with intervals, not one row per cell
    pivots = browser.find_elements(By.CSS_SELECTOR, "table.pivot")
    assert len(pivots) == 4 + 1  # four metrics on the NSD-like data, one on simulated
    first = pivots[0]
    assert len(first.find_elements(By.CSS_SELECTOR, "tbody tr")) == 16
    assert len(first.find_elements(By.CSS_SELECTOR, "thead th")) == 1 + 4
    assert "[" in first.find_element(By.CSS_SELECTOR, "tbody td").text
    body = browser.find_element(By.ID, "model-body").text
    assert "w-zoo/net10" in body and "stim-1" in body and "Provenance" in body
    assert "simulated" in body

    # overlay up to four models on one region, with the ceiling band
    _open(
        browser,
        server + "#/model/zoo%2Fnet10?with=zoo/net04,baseline/gabor,zoo/net00:random&region=hV4",
    )
    _wait(lambda: browser.find_elements(By.ID, "curve-chart"), what="the overlay")
    series = json.loads(browser.find_element(By.ID, "curve-chart").get_attribute("data-series"))
    assert series[0].startswith("ceiling")
    assert series[1:] == ["zoo/net10", "zoo/net04", "baseline/gabor", "zoo/net00:random"]
    assert "4 models at most" in browser.find_element(By.ID, "curve-add").text


def test_dataset_runs_and_compare_pages(server, browser, downloads):
    from selenium.webdriver.common.by import By

    _open(browser, server + "#/dataset/nsd-like%2Fshared")
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "table.ceilings"), what="the ceilings")
    text = browser.find_element(By.ID, "dataset-body").text
    assert "16 ROIs" in text and "Generated for brainrank" in text  # description, citation
    ceilings = browser.find_elements(By.CSS_SELECTOR, "table.ceilings")
    assert len(ceilings) == 3  # srp-ridge, versa, encoding store a ceiling; rsa does not
    assert len(ceilings[0].find_elements(By.CSS_SELECTOR, "tbody tr")) == 16
    _open(browser, server + "#/dataset/simulated")
    _wait(lambda: "Simulated data" in browser.find_element(By.ID, "dataset-body").text, what="sim")

    _open(browser, server + "#/runs")
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#runs-body table"), what="the runs")
    assert "fits per second" in browser.find_element(By.ID, "runs-body").text

    x, y = "nsd-like/shared/rsa", "nsd-like/shared/srp-ridge|V1v"
    _open(browser, server + f"#/compare?x={x}&y={y}")
    result = _wait(lambda: browser.find_element(By.ID, "compare-result").text, what="Spearman r")
    from scipy import stats

    ranking = _api(server, "/api/ranking")
    pairs = [(r[x], r["cells"]["nsd-like/shared/srp-ridge"]["regions"]["V1v"])
             for r in ranking["rows"] if r["data"] == "real"]  # fmt: skip
    expected = stats.spearmanr(*zip(*pairs, strict=True)).statistic
    assert f"Spearman r = {expected:.3f}" in result and f"n = {N_MODELS}" in result
    points = browser.execute_script(
        "return Chart.getChart(document.getElementById('compare-chart')).data.datasets"
        ".flatMap(d => d.data.map(p => p.model))"
    )
    assert sorted(points) == sorted(
        m for m, *_ in [(r["model"],) for r in ranking["rows"] if r["data"] == "real"]
    )


def test_downloads_hold_what_is_shown(server, browser, downloads):
    from selenium.webdriver.common.by import By

    _open(browser, server + "#/?where=kind:random&q=net1&open=nsd-like/shared/rsa")
    shown = _loaded(browser)
    assert shown and all(":random" in m and "net1" in m for m in shown)
    browser.find_element(By.ID, "dl-csv").click()
    path = downloads / "brainrank-ranking.csv"
    _wait(lambda: path.is_file() and path.stat().st_size > 0, what="the CSV download")
    with path.open() as handle:
        records = list(csv.DictReader(handle))
    assert [r["model"] for r in records if r["data"] == "real"] == shown
    assert "nsd-like/shared/rsa|V1v" in records[0]  # the expanded regions are in it
    browser.find_element(By.ID, "dl-json").click()
    path = downloads / "brainrank-ranking.json"
    _wait(lambda: path.is_file() and path.stat().st_size > 0, what="the JSON download")
    payload = json.loads(path.read_text())
    assert payload["filters"]["where"] == ["kind:random"]
    assert [r["model"] for r in payload["rows"] if r["data"] == "real"] == shown


@pytest.mark.parametrize(("width", "height"), [(1400, 1000), (390, 844)], ids=["1400px", "phone"])
def test_headline_columns_fit_without_horizontal_scrolling(
    server, browser, screenshots, width, height
):
    """Rank, model, mean and CI are on screen without scrolling sideways, at 1400 px with
    every region expanded and on a 390 px phone; on the phone the table starts near the top."""
    from selenium.webdriver.common.by import By

    expand = "&".join(f"open=nsd-like/shared/{m}" for m in ("rsa", "srp-ridge", "versa"))
    _open(browser, server + "#/?" + expand, width, height)
    _loaded(browser, N_MODELS)
    inner = browser.execute_script("return window.innerWidth")
    assert inner == width
    # the page itself never scrolls sideways: wide tables scroll inside their box
    assert browser.execute_script("return document.documentElement.scrollWidth") <= inner
    for cls in ("fixed-rank", "fixed-model", "fixed-mean", "fixed-ci"):
        for cell in browser.find_elements(
            By.CSS_SELECTOR, f"table.ranking[data-group='real'] tr:nth-child(-n+3) .{cls}"
        ):
            box = cell.rect
            assert box["x"] >= 0 and box["x"] + box["width"] <= inner, (cls, box, inner)
    # they stay when the table is scrolled sideways (sticky)
    browser.execute_script("document.querySelector('.table-wrap').scrollLeft = 2000")
    ci = browser.find_element(By.CSS_SELECTOR, "table.ranking tbody tr td.fixed-ci")
    assert ci.rect["x"] + ci.rect["width"] <= inner and ci.is_displayed()
    browser.execute_script("document.querySelector('.table-wrap').scrollLeft = 0")
    table_top = browser.find_element(By.CSS_SELECTOR, "table.ranking").rect["y"]
    if width < 700:
        assert table_top < 300, table_top  # was 1,379 px down
    browser.save_screenshot(str(screenshots / f"ranking-{width}.png"))
