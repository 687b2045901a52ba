"""An operator in a real browser: a project developer (not a system admin) logs in, writes
an application as a Compose file in the editor, checks it, saves it, watches it deploy and
scales it, all through the pages (headless Chromium, as in test_browser_scale)."""
from __future__ import annotations

import uuid

import pytest

from tests.integration.apps import tear_down
from tests.integration.test_browser_scale import _rows, _running, browser  # noqa: F401
from tests.support import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.berth_environments("embedded")]
PASSWORD = "operator-password"


@pytest.fixture
def developer(berth_app, fleet):
    """A developer of a fresh project; the application is torn down afterwards."""
    suffix = uuid.uuid4().hex[:6]
    user, project = f"dev-{suffix}", f"team-{suffix}"
    assert berth_app.api("POST", "/api/v1/users", json={"username": user, "password": PASSWORD}
                         ).status_code == 201
    assert berth_app.api("POST", "/api/v1/projects", json={"name": project}).status_code == 201
    assert berth_app.api("POST", f"/api/v1/projects/{project}/members",
                         json={"username": user, "role": "developer"}).status_code == 201
    app_name = f"op-{suffix}"
    yield user, project, app_name
    if berth_app.api("GET", f"/api/v1/applications/{app_name}").status_code == 200:
        tear_down(berth_app, app_name)


def click(browser, element_id: str) -> None:
    """Scrolled to the middle first: at the page's foot a button may lie under the footer."""
    from selenium.webdriver.common.by import By

    element = browser.find_element(By.ID, element_id)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def compose_text(app_name: str, image: str) -> str:
    return f"""name: {app_name}
services:
  db:
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && echo db > /www/index.html && exec httpd -f -p 127.0.0.1:$$PORT -h /www"]
    ports: ["80"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:$$PORT/"]
      interval: 500ms
      retries: 2
    deploy: {{resources: {{limits: {{cpus: "0.05", memory: 16M}}}}}}
  web:
    image: {image}
    command: ["sleep", "3600"]
    depends_on: {{db: {{condition: service_healthy}}}}
    deploy: {{replicas: 1, resources: {{limits: {{cpus: "0.05", memory: 16M}}}}}}
"""


def test_a_developer_defines_an_application_in_the_editor_watches_it_and_scales_it(
        berth_app, bed, developer, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    user, project, app_name = developer
    browser.get(berth_app.url + "/login")
    browser.find_element(By.NAME, "username").send_keys(user)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: browser.title.startswith("Overview"), 15, "the dashboard after logging in")

    browser.get(berth_app.url + "/services/")
    browser.find_element(By.ID, "new-application").click()
    wait_for(lambda: browser.find_elements(By.ID, "compose"), 15, "the editor")
    choice = Select(browser.find_element(By.NAME, "project"))
    assert [o.text for o in choice.options] == [project]  # only the projects they operate
    choice.select_by_visible_text(project)
    browser.execute_script("document.getElementById('compose').value = arguments[0]",
                           compose_text(app_name, bed.image))
    click(browser, "check-button")
    order = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#start-order li"), 15,
                     "the start order after Check")
    assert [li.text for li in order] == ["db", "web"]
    assert berth_app.api("GET", f"/api/v1/applications/{app_name}").status_code == 404  # saved nothing

    click(browser, "save-button")
    flash = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "main .alert-info"), 15,
                     "the flash after saving")[0]
    assert f"Application {app_name} defined in project {project}" in flash.text

    # Watch it deploy on the service page: the live table fills without a reload.
    browser.get(f"{berth_app.url}/services/{app_name}/web")
    wait_for(lambda: [state for _, state in _rows(browser)] == ["running"], 120,
             "web (after db turned healthy) running on its page", interval_s=0.5)
    replicas = browser.find_element(By.ID, "replicas")
    replicas.clear()
    replicas.send_keys("2")
    click(browser, "scale-button")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "main .alert-info"), 15, "the scale flash")
    wait_for(lambda: [state for _, state in _rows(browser)] == ["running", "running"], 90,
             "two running web instances in the live table", interval_s=0.5)
    assert _running(berth_app, app_name, "web") == 2
    events = berth_app.api("GET", "/api/v1/audit", params={"kind": "service.scale",
                                                           "subject": f"{app_name}/web"}).json()
    assert events and events[0]["actor"] == user  # the developer did it, not an admin
