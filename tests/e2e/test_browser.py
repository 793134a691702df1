"""What people see, in a real browser: the coder's flow in Label Studio's UI, and the lead's `/status`.

Debian's Chromium and ChromeDriver, driven headless by Selenium, against the real Label Studio of
the e2e tests (on SQLite: the UI is the same on either database) and the backend under gunicorn.
Without Chromium, its driver or Selenium the tests are skipped, naming what is missing; `.ci/run`
installs all three. Screenshots go to `SCREENSHOTS` (default: the test's temporary directory).
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from backend.devtools.local_studio import free_port
from backend.devtools.processes import BackendProcess
from backend.domain.versions import LIVE
from backend.resources import label_config
from backend.storage.layout import ProjectDir
from backend.storage.prediction_ids import PredictionIds
from backend.studio.client import basic_auth_header
from tests.e2e.conftest import backend_env
from tests.helpers import FIXTURES, connect_backend, study_form_result, wait_for

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
CONFIG = label_config("interview_coding")
AUTH = ("lead", "browser-pass-1")
ROUND_TIMEOUT = 240
FIRST = 8  # annotations before the coder opens the queue (MIN_ANNOTATIONS_TO_TRAIN)

pytestmark = pytest.mark.parametrize("label_studio", ["sqlite"], indirect=True)


def missing_browser() -> str | None:
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium"
    if not CHROMEDRIVER.exists():
        return f"no ChromeDriver at {CHROMEDRIVER}: apt-get install chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "no Selenium: pip install selenium (the test extra has it)"
    return None


def shown_names(config: str) -> dict[str, str]:
    """Code (the stored alias) → the option's label coders see."""
    return {c.get("alias") or c.get("value"): c.get("value") for c in ET.fromstring(config).iter("Choice")}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",  # the closed network refuses Chromium's own calls
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    directory = Path(os.environ.get("SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class Project:
    """A coding project in a real Label Studio, connected to the backend, with its first version."""

    def __init__(self, sdk, studio, backend: BackendProcess, project: int, codes_by_text: dict):
        self.sdk, self.studio, self.backend, self.id = sdk, studio, backend, project
        self.codes_by_text = codes_by_text
        self.tasks = {t.id: t.data["text"] for t in sdk.tasks.list(project=project, page_size=100)}

    def metrics(self) -> dict:
        return self.backend.metrics().get(str(self.id), {})

    def live(self) -> dict[int, str]:
        """The backend's live set: a task Label Studio serves (under `LIVE`) → the version that wrote it."""
        return PredictionIds(ProjectDir(Path(self.backend.env["MODEL_DIR"]), str(self.id))).live()

    def settled(self, labeled: int) -> dict | None:
        """The metrics once a version trained on `labeled` segments serves completely."""
        m = self.metrics()
        done = m.get("labeled") == labeled and m.get("state") == "idle" and not m.get("pending")
        return m if done and m.get("predictions_complete") else None

    def annotated_ids(self) -> set[int]:
        return {t.id for t in self.sdk.tasks.list(project=self.id, page_size=100) if t.total_annotations}

    def ranked_first(self, besides: set[int] = frozenset()) -> tuple[int, dict]:
        """The unlabeled task the serving version ranks most informative (lowest score), and its
        prediction: the task Label Studio's uncertainty sampling serves next."""
        version = self.sdk.projects.get(id=self.id).model_version
        done, found = self.annotated_ids() | set(besides), []
        for task in self.sdk.tasks.list(project=self.id, page_size=100, fields="all"):
            for item in task.predictions or []:
                prediction = item if isinstance(item, dict) else item.model_dump()
                if task.id not in done and prediction["model_version"] == version:
                    found.append((prediction["score"], task.id, prediction))
        _, task_id, prediction = min(found, key=lambda item: (item[0], item[1]))
        return task_id, prediction


@pytest.fixture(scope="module")
def project(label_studio, model_path, tmp_path_factory):
    from label_studio_sdk.client import LabelStudio

    sdk = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    workdir = tmp_path_factory.mktemp("browser-backend")
    rounds = {"MIN_ANNOTATIONS_TO_TRAIN": str(FIRST)}
    env = backend_env(label_studio, model_path, workdir, AUTH, **rounds)
    backend = BackendProcess(free_port(), env, AUTH, workers=2, log_path=workdir / "backend.log").start()
    segments = [json.loads(line) for line in (FIXTURES / "segments.jsonl").read_text().splitlines()][:24]
    created = sdk.projects.create(title="browser coding", label_config=CONFIG).id
    sdk.projects.import_tasks(
        id=created, request=[{"text": s["text"], "question": "How are you?"} for s in segments]
    )
    assert connect_backend(label_studio, created, backend.url, AUTH), "the webhook never got basic auth"
    found = Project(sdk, label_studio, backend, created, {s["text"]: s["codes"] for s in segments})
    for task_id in sorted(found.tasks)[:FIRST]:
        sdk.annotations.create(
            id=task_id, result=study_form_result(found.codes_by_text[found.tasks[task_id]])
        )
    wait_for(lambda: found.settled(FIRST), ROUND_TIMEOUT, "the first version, completely written")
    yield found
    backend.stop()


def log_in(driver, studio) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{studio.url}/user/login/")
    if not driver.find_elements(By.NAME, "email"):
        return  # logged in by an earlier test
    driver.find_element(By.NAME, "email").send_keys(studio.username)
    driver.find_element(By.NAME, "password").send_keys(studio.password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit], form input[type=submit]").click()
    wait_for(lambda: "/user/login" not in driver.current_url, 60, "Label Studio to log us in")


def settled_dom(read):
    """`read` run again while React re-renders what it looks at (stale elements), for up to 10 s."""
    from selenium.common.exceptions import StaleElementReferenceException

    def attempt():
        try:
            return (read(),)
        except StaleElementReferenceException:
            return None

    return wait_for(attempt, 10, "the page to stop re-rendering", interval=0.2)[0]


def shown_segment(driver) -> str | None:
    """The segment text on the labeling screen (the second Text of the form), once it is there."""
    from selenium.webdriver.common.by import By

    def read():
        lines = driver.find_elements(By.CSS_SELECTOR, ".lsf-richtext__line")
        return lines[1].text if len(lines) >= 2 and lines[1].text else None

    return settled_dom(read)


def checked_options(driver) -> set[str]:
    """The labels of the options that are checked in the form."""
    from selenium.webdriver.common.by import By

    def read():
        inputs = driver.find_elements(By.CSS_SELECTOR, "input.ant-checkbox-input, input.ant-radio-input")
        return {item.get_attribute("name") for item in inputs if item.is_selected()}

    return settled_dom(read)


def predicted_options(prediction: dict, names: dict[str, str]) -> set[str]:
    return {names[code] for item in prediction["result"] for code in item["value"]["choices"]}


def task_on_screen(project: Project, driver, previous: str | None = None) -> int:
    try:
        text = wait_for(
            lambda: (t := shown_segment(driver)) and t != previous and t, 60, "the labeling screen's segment"
        )
    except TimeoutError:
        driver.save_screenshot(str(Path(os.environ.get("SCREENSHOTS", ".")) / "timeout.png"))
        raise
    return next(task_id for task_id, task_text in project.tasks.items() if task_text == text)


def click_button(driver, text: str) -> bool:
    from selenium.webdriver.common.by import By

    buttons = [b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == text]
    if buttons:
        buttons[0].click()
    return bool(buttons)


def submit(driver) -> None:
    from selenium.webdriver.common.by import By

    settled_dom(
        lambda: driver.find_element(By.CSS_SELECTOR, 'button[aria-label="Submit current annotation"]').click()
    )


def test_the_coder_gets_the_top_ranked_task_pre_annotated_and_the_queue_follows(
    project, browser, screenshots
):
    from selenium.webdriver.common.by import By

    names = shown_names(CONFIG)
    expected, prediction = project.ranked_first()
    log_in(browser, project.studio)
    browser.get(f"{project.studio.url}/projects/{project.id}/data")
    label_all = lambda: settled_dom(lambda: click_button(browser, "Label All Tasks"))  # noqa: E731
    wait_for(label_all, 60, "the Label All Tasks button")
    first = task_on_screen(project, browser)
    assert first == expected, "Label All Tasks serves the task the backend ranked first"
    wait_for(lambda: checked_options(browser), 30, "the pre-annotation to be checked")
    predicted = predicted_options(prediction, names)
    assert checked_options(browser) == predicted, "the model's codes are pre-checked"
    boxes = lambda: browser.find_elements(By.CSS_SELECTOR, "input[type=checkbox]")  # noqa: E731
    options = settled_dom(lambda: {box.get_attribute("name") for box in boxes()})
    assert {"Physical health", "Mental health"} <= options, "coders see readable labels, not code names"
    browser.save_screenshot(str(screenshots / "labeling.png"))

    toggled = "Mental health"  # the coder disagrees with the model on one code
    settled_dom(lambda: browser.find_element(By.XPATH, f'//label[.//input[@name="{toggled}"]]').click())
    corrected = checked_options(browser)  # what the coder submits
    assert (toggled in corrected) != (toggled in predicted)
    submit(browser)
    second = task_on_screen(project, browser, previous=project.tasks[first])
    stored = project.sdk.annotations.list(id=first)[0].result
    codes = {code for item in stored for code in item["value"]["choices"]}
    assert codes == {code for code, name in names.items() if name in corrected}, "Label Studio stores codes"

    wait_for(lambda: project.settled(FIRST + 1), ROUND_TIMEOUT, "the round with the coder's annotation")
    expected_next, _ = project.ranked_first(besides={second})
    submit(browser)  # the coder accepts the task served meanwhile as it is
    third = task_on_screen(project, browser, previous=project.tasks[second])
    assert third == expected_next, "the next task is the top-ranked one of the model that learned the change"


def prediction_tabs(driver) -> list[str]:
    """The prediction tabs of a task opened from the Data Manager, as the text each shows (its
    version, when, and its score as a percentage); the coder's own annotation has a tab too."""
    from selenium.webdriver.common.by import By

    def read():
        tabs = driver.find_elements(By.CSS_SELECTOR, ".lsf-annotation-button")
        return [tab.text for tab in tabs if re.match(rf"v\d+-|{LIVE[:8]}", tab.text)]  # "active-l...-queue"

    return settled_dom(read)


def test_a_task_kept_open_while_two_rounds_go_live_still_submits_and_shows_one_prediction(
    project, browser, screenshots
):
    """Issue 36: each round updates the task's one prediction in place, so the annotation of a task
    a coder kept open names a prediction that still exists (Label Studio refuses the submit once it
    is deleted), and a task shows one prediction tab, not one per version."""
    labeled = len(project.annotated_ids())
    wait_for(lambda: project.settled(labeled), ROUND_TIMEOUT, "the rounds so far")
    log_in(browser, project.studio)
    browser.get(f"{project.studio.url}/projects/{project.id}/data")
    wait_for(lambda: settled_dom(lambda: click_button(browser, "Label All Tasks")), 60, "Label All Tasks")
    kept_open = task_on_screen(project, browser)
    held = project.sdk.predictions.list(task=kept_open)
    assert len(held) == 1, [p.model_version for p in held]
    versions = [project.metrics()["current_version"]]
    others = sorted(set(project.tasks) - project.annotated_ids() - {kept_open})
    for task_id in others[:2]:  # another coder's annotations: two rounds go live meanwhile
        project.sdk.annotations.create(id=task_id, result=study_form_result(["physical_health"]))
        labeled += 1
        versions.append(
            wait_for(lambda n=labeled: project.settled(n), ROUND_TIMEOUT, "a round")["current_version"]
        )
    assert len(set(versions)) == 3, versions
    now_held = project.sdk.predictions.list(task=kept_open)
    assert [(p.id, p.model_version) for p in now_held] == [(held[0].id, LIVE)], "updated in place, served"
    assert project.live()[kept_open] in versions, "by one of them (past the coders' reach, an older one)"

    submit(browser)
    task_on_screen(project, browser, previous=project.tasks[kept_open])
    stored = project.sdk.annotations.list(id=kept_open)
    assert len(stored) == 1, "Label Studio took the submit of the task kept open"
    assert stored[0].parent_prediction == held[0].id, "its annotation names the prediction updated twice"
    latest = wait_for(lambda: project.settled(labeled + 1), ROUND_TIMEOUT, "its round")["current_version"]

    unlabeled = sorted(set(project.tasks) - project.annotated_ids())[0]
    browser.get(f"{project.studio.url}/projects/{project.id}/data?task={unlabeled}")
    task_on_screen(project, browser)
    tabs = wait_for(lambda: prediction_tabs(browser), 60, "the task's prediction tab")
    browser.save_screenshot(str(screenshots / "one-prediction-tab.png"))
    assert len(tabs) == 1 and tabs[0].startswith(LIVE[:8]), tabs
    assert project.live()[unlabeled] in {*versions, latest}, "served, written by one of the versions"
    assert len(project.sdk.predictions.list(task=unlabeled)) == 1


def test_the_lead_sees_status_with_plots_and_no_console_errors(project, browser, screenshots):
    from selenium.webdriver.common.by import By

    labeled = len(project.annotated_ids())
    wait_for(lambda: project.settled(labeled), ROUND_TIMEOUT, "the rounds so far")
    if len(project.metrics().get("figures") or []) < 3:  # run alone: give it rounds of its own
        for task_id in sorted(set(project.tasks) - project.annotated_ids())[:2]:
            project.sdk.annotations.create(id=task_id, result=study_form_result(["physical_health"]))
            labeled += 1
            wait_for(lambda n=labeled: project.settled(n), ROUND_TIMEOUT, "one more round")
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": basic_auth_header(*AUTH)}}
    )
    browser.get_log("browser")  # forget what Label Studio's pages logged
    browser.get(f"{project.backend.url}/status/{project.id}")
    heading = wait_for(lambda: browser.find_elements(By.TAG_NAME, "h1"), 30, "the status page")[0].text
    assert heading == f"Project {project.id}"
    figures = {
        f.get_attribute("id")
        for f in browser.find_elements(By.CSS_SELECTOR, "figure")
        if f.find_elements(By.TAG_NAME, "svg")
    }
    assert {"plot-counts", "plot-stopping"} <= figures
    quality = project.metrics().get("quality") or {}
    if any(code["f1"] is not None for code in quality.get("codes", {}).values()):
        assert "plot-f1" in figures
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1100, min(height + 40, 4000))
    browser.save_screenshot(str(screenshots / "status.png"))
