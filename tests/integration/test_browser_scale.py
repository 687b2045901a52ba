"""The web UI in a real browser: headless Chromium logs in, scales a service from its page
and sees the new instances appear through the page's htmx live update (no reload).

It lives in tests/integration (not tests/browser) so that it shares that directory's
session fixtures: a second conftest importing them would define a second `bed`
and start a second test bed in a run of both directories.

Chromium and its WebDriver are Debian's (scripts/install-system-deps.sh --browser); nothing
is downloaded: Selenium is given both paths, so Selenium Manager is never run.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import ADMIN_PASSWORD
from tests.support import require_parts, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-proxy-server",
    "--window-size=1280,900",
)
SCALED_TO = 3

# The page is under test, not the database or broker behind it: one environment is enough.
pytestmark = [pytest.mark.browser, pytest.mark.berth_environments("embedded")]


def _missing_browser() -> list[str]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    return missing


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium through Debian's chromedriver, in a fresh profile; quit at the end."""
    require_parts(_missing_browser(), "scripts/install-system-deps.sh --browser installs Chromium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="berth-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    service = Service(executable_path=str(CHROMEDRIVER),
                      log_output=str(tmp_path / "chromedriver.log"))
    driver = None
    try:
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        else:
            service.stop()
        shutil.rmtree(profile, ignore_errors=True)


def _service(berth_app, app_name: str, service_name: str) -> dict:
    response = berth_app.api("GET", f"/api/v1/applications/{app_name}")
    assert response.status_code == 200, response.text
    return next(s for s in response.json()["services"] if s["name"] == service_name)


def _running(berth_app, app_name: str, service_name: str) -> int:
    return sum(i["state"] == "running"
               for i in _service(berth_app, app_name, service_name)["instances"])


@pytest.fixture
def sleeper(berth_app, bed, fleet):
    """An application with one `sleep` service of one running instance; scaled to 0 after."""
    app_name, service_name = f"ui-{uuid.uuid4().hex[:8]}", "sleeper"
    spec = {"name": app_name, "services": [{
        "name": service_name, "image": bed.image, "replicas": 1,
        "command": ["sleep", "3600"], "cpus": 0.05, "memory": 16 * 2**20, "port": False}]}
    response = berth_app.api("POST", "/api/v1/applications", json=spec)
    assert response.status_code == 201, response.text
    try:
        wait_for(lambda: _running(berth_app, app_name, service_name) == 1, 120,
                 f"{app_name}/{service_name} to run one instance", interval_s=0.5)
        yield app_name, service_name
    finally:
        response = berth_app.api("PATCH", f"/api/v1/applications/{app_name}/services/{service_name}",
                                 json={"replicas": 0})
        assert response.status_code == 200, response.text
        wait_for(lambda: not _service(berth_app, app_name, service_name)["instances"], 60,
                 f"{app_name}/{service_name} to have no instances left", interval_s=0.5)


def _rows(driver) -> list[tuple[str, str]]:
    """(instance, state) of each row of the live instances table, read in one go."""
    return [tuple(row) for row in driver.execute_script("""
        return Array.from(document.querySelectorAll('#instances-live .instance-row'))
            .map(tr => [tr.cells[0].textContent.trim(), tr.cells[3].textContent.trim()]);""")]


def test_scaling_from_the_service_page_shows_the_new_instances_live(
        berth_app, sleeper, browser, tmp_path):
    from selenium.webdriver.common.by import By

    app_name, service_name = sleeper
    started = time.monotonic()

    # Log in through the form.
    browser.get(berth_app.url + "/login")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: browser.title.startswith("Overview"), 15, "the dashboard after logging in")
    assert browser.find_element(By.CSS_SELECTOR, "main h1").text == "Overview"
    assert "admin (admin)" in browser.find_element(By.CSS_SELECTOR, ".navbar-text").text

    # The service page, as it was before scaling.
    browser.get(f"{berth_app.url}/services/{app_name}/{service_name}")
    assert browser.find_element(By.CSS_SELECTOR, "main h1").text == f"{app_name} / {service_name}"
    wait_for(lambda: [state for _, state in _rows(browser)] == ["running"], 15,
             "the one running instance on the service page")

    replicas = browser.find_element(By.ID, "replicas")
    replicas.clear()
    replicas.send_keys(str(SCALED_TO))
    browser.find_element(By.ID, "scale-button").click()
    flash = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "main .alert"), 15,
                     "the flash message after scaling")[0]
    assert flash.text == f"Scaling {service_name} to {SCALED_TO}.", flash.text
    assert "alert-info" in flash.get_attribute("class")
    rows_when_scaled = len(_rows(browser))

    # From here on the page is never loaded again: mark this document and its rendered
    # table, so the end can tell that the document stayed and htmx swapped the table.
    browser.execute_script("""
        window.berthNoReload = true;
        document.getElementById('instances').dataset.rendered = 'server';""")

    def scaled():
        rows = _rows(browser)
        return (len(rows) == SCALED_TO and all(state == "running" for _, state in rows)
                and rows)

    rows = wait_for(scaled, 60, f"{SCALED_TO} running instance rows in the live table",
                    interval_s=0.5)
    assert len({name for name, _ in rows}) == SCALED_TO, rows
    assert browser.find_element(By.ID, "instance-count").text == str(SCALED_TO)
    assert browser.execute_script("return window.berthNoReload === true"), "the page reloaded"
    assert browser.execute_script(
        "return document.getElementById('instances').dataset.rendered === undefined"), \
        "the live part was never swapped by htmx"
    assert browser.execute_script(
        "return getComputedStyle(document.querySelector('.btn-primary')).backgroundColor"
    ) == "rgb(13, 110, 253)", "Bootstrap's styles are not applied"
    # The UI and the API agree.
    assert _running(berth_app, app_name, service_name) == SCALED_TO

    screenshot = tmp_path / "scaled.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 0
    print(f"\nscreenshot: {screenshot}; {rows_when_scaled} row(s) after the redirect, "
          f"{SCALED_TO} running ones {time.monotonic() - started:.1f} s after the login")
