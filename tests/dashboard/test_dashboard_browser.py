"""The dashboard in a real browser: headless Chromium (Debian's package) through selenium.

The live test runs a real digits search, pauses it (SIGSTOP) once its first candidate is in
the store, opens the page, clicks a candidate, then lets the search go on (SIGCONT) and waits
for the candidates finished after the page was opened to appear without a reload. Screenshots
go to the test's tmp directory (the path is printed). Without chromium and chromedriver these
tests skip, except under CI=true, where they fail: `.ci/run` installs both.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SEARCH
from dashboard_helpers import serve_in_thread
from genomorph.cli.dashboard.rundata import RunUnreadable, run_dirs
from genomorph.cli.dashboard.server import create_app, hosts_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT_S = 120


def _require_browser() -> None:
    missing = [
        name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if path is None
    ]
    if not missing:
        return
    message = (
        f"the dashboard's browser tests need {' and '.join(missing)}: "
        "`apt-get install chromium chromium-driver` (.ci/run installs them)"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,2200",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any, message: str, timeout: float = WAIT_S) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message)


def _console_errors(driver: Any) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _finished_rows(driver: Any) -> int:
    return int(
        driver.execute_script(
            "return [...document.querySelectorAll('#candidates tbody tr')]"
            ".filter(tr => tr.children[2].textContent === 'finished').length"
        )
    )


def _check_plots_and_click(driver: Any, cid: int) -> None:
    from selenium.webdriver.common.by import By

    for plot in ("plot-acc-params", "plot-progress"):
        traces = driver.find_elements(By.CSS_SELECTOR, f"#{plot} .main-svg .scatterlayer .trace")
        assert traces, f"{plot} drew no trace"
    points = driver.find_elements(By.CSS_SELECTOR, "#plot-acc-params .scatterlayer .point")
    assert points, "no candidate point in accuracy vs parameters"
    driver.find_element(By.CSS_SELECTOR, f'#candidates tbody tr[data-id="{cid}"]').click()
    _wait(driver, lambda d: "input 1x8x8" in d.find_element(By.ID, "detail-genome").text, "no genome shown")
    assert driver.find_element(By.ID, "detail-title").text.startswith(f"Candidate #{cid}")
    assert driver.find_elements(By.CSS_SELECTOR, "#detail-lineage > li"), "no lineage shown"
    if shutil.which("dot"):
        _wait(
            driver,
            lambda d: d.execute_script(
                "const i = document.getElementById('detail-graph-img'); return i && i.complete && i.naturalWidth > 0"
            ),
            "the candidate's graph did not render",
        )
    assert driver.find_elements(By.CSS_SELECTOR, "#plot-history .main-svg"), "no per-epoch plot"


def _finished_in_store(run_dir: Path) -> int:
    try:
        [run] = run_dirs([run_dir])
        return run.page()["status"]["counts"].get("finished", 0)
    except RunUnreadable:
        return 0


def test_live_page_shows_new_candidates_without_reload(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    run_dir = tmp_path / "run"
    search = subprocess.Popen(
        [sys.executable, "-m", "genomorph.cli", *SEARCH, "--out", str(run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    paused = False
    try:
        deadline = time.monotonic() + 300
        while _finished_in_store(run_dir) < 1:
            assert search.poll() is None and time.monotonic() < deadline, "the search ended or stalled early"
            time.sleep(0.1)
        search.send_signal(signal.SIGSTOP)
        paused = True
        before = _finished_in_store(run_dir)
        assert before < 4, "the search finished everything before it could be paused"
        app = create_app(run_dirs([run_dir]), poll_s=0.5, allowed_hosts=hosts_for("127.0.0.1"))
        with serve_in_thread(app) as port:
            browser.get(f"http://127.0.0.1:{port}/")
            _wait(
                browser,
                lambda d: d.execute_script("return document.body.dataset.ready === '1'"),
                "page not ready",
            )
            browser.execute_script("window.__sameDocument = true;")
            assert _finished_rows(browser) == before
            _check_plots_and_click(browser, 0)
            search.send_signal(signal.SIGCONT)
            paused = False
            _wait(browser, lambda d: _finished_rows(d) > before, "no new candidate appeared", timeout=300)
            # the open candidate's detail follows too: the start network now has children
            _wait(
                browser,
                lambda d: "#1" in d.find_element(By.ID, "detail-metrics").text,
                "detail not refreshed",
            )
            assert browser.execute_script("return window.__sameDocument === true"), "the page was reloaded"
            assert browser.execute_script("return Number(document.body.dataset.polls)") > 1
            shot = tmp_path / "dashboard-live.png"
            browser.save_screenshot(str(shot))
            print("screenshot:", shot)
            assert shot.stat().st_size > 10_000
            assert _console_errors(browser) == []
    finally:
        if paused:
            search.send_signal(signal.SIGCONT)
        try:
            search.wait(timeout=300)
        except subprocess.TimeoutExpired:
            search.kill()
            search.wait()


def test_report_html_renders_offline(browser: Any, digits_report: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(digits_report.as_uri())
    _wait(
        browser, lambda d: d.execute_script("return document.body.dataset.ready === '1'"), "report not ready"
    )
    assert _finished_rows(browser) == 4
    _check_plots_and_click(browser, 1)
    pictures = browser.find_elements(By.CSS_SELECTOR, "#panel-pictures img")
    assert len(pictures) == 2
    _wait(
        browser,
        lambda d: all(d.execute_script("return arguments[0].naturalWidth > 0", img) for img in pictures),
        "the run's PNG plots did not load",
    )
    shot = tmp_path / "report.png"
    browser.save_screenshot(str(shot))
    print("screenshot:", shot)
    assert _console_errors(browser) == []
