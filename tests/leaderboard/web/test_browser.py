"""The leaderboard page in a real headless Chromium (Debian's chromium + chromium-driver,
driven by selenium): it loads, sorting and a filter change the rows shown, and a model's
detail opens with its layer curves. `brainrank serve` runs as a real subprocess.

Skips, saying why, only where selenium or the browser is not installed (`make
browser-deps` installs the browser with apt-get)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import synthetic_leaderboard

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
    "--window-size=1280,1600",
]


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


@pytest.fixture
def server(tmp_path):
    _requirements()
    db = tmp_path / "lb.db"
    synthetic_leaderboard.build(db)
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


@pytest.fixture
def browser(tmp_path):
    _requirements()
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(condition, timeout=20.0, what="the page"):
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


def _models(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        r.get_attribute("data-model")
        for r in driver.find_elements(By.CSS_SELECTOR, "#ranking tbody tr")
    ]


def _column(driver, key: str) -> list[str]:
    from selenium.webdriver.common.by import By

    heads = [
        th.get_attribute("data-key")
        for th in driver.find_elements(By.CSS_SELECTOR, "#ranking thead th")
    ]
    index = heads.index(key) + 1
    return [
        td.text
        for td in driver.find_elements(By.CSS_SELECTOR, f"#ranking tbody td:nth-child({index})")
    ]


def test_page_loads_sorts_filters_and_opens_a_model(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(server)
    _wait(lambda: len(_models(browser)) == 11, what="the 11 ranked models")
    assert browser.title == "brainrank leaderboard"
    assert _models(browser)[0] == "net/alpha"
    assert "11 models" in browser.find_element(By.ID, "status").text
    # the notes say what the ranking compares (the same notes as the CLI's)
    notes = browser.find_element(By.ID, "notes").text
    assert "Per-cell value" in notes and "No confidence interval: 3" in notes

    # sorting: model names ascending, then the mean ascending (worst first)
    browser.find_element(By.CSS_SELECTOR, "#ranking th[data-key='model']").click()
    names = _wait(
        lambda: (
            _models(browser)
            if _models(browser)[0] == "net/alpha" and _models(browser)[1] == "net/alpha:random"
            else None
        ),
        what="sorting by name",
    )
    assert names == sorted(names)
    # numbers sort best first on the first click, then the other way
    mean_header = browser.find_element(By.CSS_SELECTOR, "#ranking th[data-key='mean']")
    mean_header.click()
    _wait(lambda: _models(browser)[1] == "vit/gamma", what="sorting by mean")
    means = [float(v) for v in _column(browser, "mean")]
    assert means == sorted(means, reverse=True)
    header = browser.find_element(By.CSS_SELECTOR, "#ranking th[data-key='mean']")
    assert header.get_attribute("aria-sort") == "descending"
    header.click()
    _wait(lambda: _models(browser)[0] == "net/beta:random", what="sorting by mean, ascending")
    means = [float(v) for v in _column(browser, "mean")]
    assert means == sorted(means)

    # filters: only random networks, then only transformers among them
    Select(browser.find_element(By.ID, "f-trained")).select_by_value("false")
    _wait(lambda: len(_models(browser)) == 3, what="the random networks")
    assert all(m.endswith(":random") for m in _models(browser))
    Select(browser.find_element(By.ID, "f-family")).select_by_value("transformer")
    _wait(lambda: _models(browser) == ["vit/gamma:random"], what="the transformer filter")
    Select(browser.find_element(By.ID, "f-trained")).select_by_value("")
    _wait(lambda: len(_models(browser)) == 2, what="both transformers")
    # a metric filter changes the columns
    Select(browser.find_element(By.ID, "f-metric")).select_by_value("rsa")
    _wait(
        lambda: "d1/srp-ridge" not in browser.find_element(By.ID, "ranking").text,
        what="the rsa column only",
    )

    # a model's detail opens with one curve per region for each dataset/metric
    browser.find_element(
        By.CSS_SELECTOR, "#ranking tbody tr[data-model='vit/gamma'] button"
    ).click()
    _wait(lambda: browser.find_element(By.ID, "detail").is_displayed(), what="the detail panel")
    assert browser.find_element(By.ID, "detail-title").text == "vit/gamma"
    assert "/#model=vit%2Fgamma" in browser.current_url
    curves = browser.find_elements(By.CSS_SELECTOR, "#detail-curves polyline.layer-curve")
    assert len(curves) == 2 * 3  # (rsa, srp-ridge) x 3 regions
    assert {c.get_attribute("data-region") for c in curves} == {"V1", "V4", "IT"}
    assert len(curves[0].get_attribute("points").split()) == synthetic_leaderboard.LAYERS
    summary = browser.find_element(By.ID, "detail-summary").text
    assert "max" in summary and "transformer" in browser.find_element(By.ID, "detail-meta").text
    browser.find_element(By.ID, "close-detail").click()
    _wait(lambda: not browser.find_element(By.ID, "detail").is_displayed(), what="closing")
