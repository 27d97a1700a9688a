"""The dashboard in a real browser (the system's Chromium) against a real server and database filled
by the pipeline from the fake GitHub: pages load without console errors, the ranked order is the
report's, filters and sorting work, and a test quarantined from its page is quarantined for the CLI and
the API. Screenshots (light and dark, laptop and phone) are saved as it goes.

~55 s on the 2-core machine (~70 s while other work shares it): ~15-25 s to fill the database through
the pipeline, the rest in the browser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from flakeguard.junit.identity import display_name
from tests.browser import history
from tests.browser.conftest import Dashboard

pytestmark = [pytest.mark.integration, pytest.mark.browser]

LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
LEAD = "Dana Lead"


class Tab:
    """A page that records every console error, uncaught exception and failed request."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("requestfailed", self._request_failed)

    def _request_failed(self, request: Any) -> None:
        if request.failure != "net::ERR_ABORTED":  # htmx cancelling a superseded request is no error
            self.errors.append(f"request failed: {request.url} {request.failure}")

    def go(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        assert response is not None, path
        assert response.ok, f"{path}: {response.status}"
        return response

    def shot(self, board: Dashboard, name: str) -> None:
        self.page.screenshot(path=str(board.screenshots / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def login_state(browser: Any, dashboard: Dashboard) -> dict[str, Any]:
    """A browser session logged in through the login form, as the team lead."""
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.goto(dashboard.url + "/")
    assert "/login" in page.url
    page.get_by_label("API token").fill(dashboard.token)
    page.get_by_label("Your name").fill(LEAD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(dashboard.url + "/")
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


@pytest.fixture
def tab(browser: Any, dashboard: Dashboard, login_state: dict[str, Any]) -> Iterator[Tab]:
    context = browser.new_context(viewport=LAPTOP, storage_state=login_state)
    tab = Tab(context.new_page(), dashboard.url)
    yield tab
    context.close()
    assert tab.errors == []


def _test_id(tab: Tab, board: Dashboard, classname: str, name: str) -> int:
    """A test's id, as a reader finds it: searching the repository page by name and following the link."""
    tab.go(f"/repos/{board.repo}?q={name}")
    link = tab.page.get_by_role("link", name=display_name(classname, name), exact=True)
    match = re.search(r"/tests/(\d+)$", link.get_attribute("href") or "")
    assert match, link.get_attribute("href")
    return int(match.group(1))


def test_reading_needs_the_login_form_and_a_wrong_token_is_refused(
    browser: Any, dashboard: Dashboard
) -> None:
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.goto(dashboard.url + f"/repos/{dashboard.repo}")
    assert page.url.startswith(dashboard.url + "/login")
    page.get_by_label("API token").fill("not-the-token")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "That token is not right."
    page.get_by_label("API token").fill(dashboard.token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(dashboard.url + f"/repos/{dashboard.repo}")  # back where the reader wanted to go
    cookie = next(c for c in context.cookies() if c["name"] == "flakeguard_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    context.close()


def test_the_overview_counts_what_the_report_says(tab: Tab, dashboard: Dashboard) -> None:
    tests = dashboard.report()["tests"]
    tab.go("/")
    row = tab.page.get_by_role("row").filter(has_text=dashboard.repo)
    cells = row.get_by_role("cell").all_inner_texts()
    counts = [int(c) for c in cells[:4]]
    assert counts == [
        len(tests),
        sum(t["status"] == "flaky" for t in tests),
        sum(t["status"] == "broken" for t in tests),
        sum(t["quarantined"] for t in tests),
    ]
    assert counts[1] >= 3 and counts[2] == 1
    # Runs that failed only because of flaky tests cost CI time, in the last 7 and 30 days.
    assert re.fullmatch(r"\d+(\.\d)? s|\d+ min \d\d s", cells[5]), cells[5]
    assert cells[5] != "0 s"
    assert tab.page.locator("svg.spark").count() == 1
    tab.shot(dashboard, "overview-laptop-light")


def test_the_repository_page_ranks_tests_exactly_like_the_report(tab: Tab, dashboard: Dashboard) -> None:
    expected = [t["key"] for t in dashboard.report()["tests"]]
    tab.go(f"/repos/{dashboard.repo}?per_page=500")
    keys = tab.page.locator("tr[data-key]").evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert keys == expected
    first = tab.page.locator("tr[data-key]").first
    assert first.locator(".badge").first.inner_text() in ("broken", "flaky")
    assert first.locator("svg.strip rect").count() == 30  # the newest 30 executions


def test_filters_by_status_quarantine_and_name_and_sorts(tab: Tab, dashboard: Dashboard) -> None:
    tests = dashboard.report()["tests"]
    tab.go(f"/repos/{dashboard.repo}")
    page = tab.page

    page.get_by_label("Status").select_option("flaky")
    page.wait_for_url(re.compile(r"status=flaky"))
    flaky = [t["key"] for t in tests if t["status"] == "flaky"]
    page.wait_for_function(f"document.querySelectorAll('tr[data-key]').length === {len(flaky)}")
    assert page.locator("tr[data-key]").evaluate_all("rows => rows.map(r => r.dataset.key)") == flaky

    page.get_by_label("Name").fill("login")
    page.wait_for_url(re.compile(r"q=login"))
    login = [t["key"] for t in tests if t["status"] == "flaky" and "login" in t["key"].lower()]
    page.wait_for_function(f"document.querySelectorAll('tr[data-key]').length === {len(login)}")
    assert page.locator("tr[data-key]").evaluate_all("rows => rows.map(r => r.dataset.key)") == login

    page.get_by_label("Name").fill("")
    page.get_by_label("Status").select_option("")
    page.get_by_label("Quarantine").select_option("no")
    page.wait_for_url(re.compile(r"quarantine=no"))
    free = [t["key"] for t in tests if not t["quarantined"]]
    page.wait_for_function(f"document.querySelectorAll('tr[data-key]').length === {min(len(free), 50)}")

    page.get_by_role("link", name="Test", exact=True).click()
    page.wait_for_url(re.compile(r"sort=name"))
    names = page.locator("tr[data-key] a.test-name").all_inner_texts()
    assert names == sorted(names, key=str.lower) and len(names) == min(len(free), 50)
    assert page.locator("th[aria-sort=ascending]").inner_text().startswith("Test")
    page.get_by_label("Status").select_option("healthy")
    page.wait_for_url(re.compile(r"status=healthy"))
    assert "sort=name" in page.url and "quarantine=no" in page.url  # filters keep the table's sort
    tab.shot(dashboard, "repository-filtered")


def test_the_test_page_explains_the_status_the_score_the_history_and_the_failures(
    tab: Tab, dashboard: Dashboard
) -> None:
    test_id = _test_id(tab, dashboard, *history.RERUN_FLAKY)
    tab.go(f"/repos/{dashboard.repo}/tests/{test_id}")
    page = tab.page
    assert page.locator(".status-line .badge").first.inner_text() == "flaky"
    evidence = page.locator("ul.evidence li").all_inner_texts()
    assert any("re-run" in sentence for sentence in evidence), evidence
    assert page.locator("#score-title + p + table tbody tr").count() == 4  # the four components
    commits = page.locator("ol.history > li.commit")
    assert commits.count() == history.RUNS  # one commit per run; re-runs stay with their commit
    assert page.locator("ol.history .rerun").count() >= 1
    signatures = page.locator("#signatures-title ~ div table tbody tr")
    assert signatures.count() == 2  # ElementNotVisible and StaleElementReference, numbers ignored
    tab.shot(dashboard, "test-laptop-light")

    retry_id = _test_id(tab, dashboard, *history.RETRY_FLAKY)
    tab.go(f"/repos/{dashboard.repo}/tests/{retry_id}")
    assert page.locator("ol.history i.c.retry").count() >= 1
    assert any("within the same run attempt" in s for s in page.locator("ul.evidence li").all_inner_texts())


def test_quarantining_from_the_test_page_reaches_the_cli_and_the_api(tab: Tab, dashboard: Dashboard) -> None:
    classname, name = "shop.CartTest", "test_merge_carts"
    test_id = _test_id(tab, dashboard, classname, name)
    tab.go(f"/repos/{dashboard.repo}/tests/{test_id}")
    page = tab.page
    page.get_by_label("Reason").fill("blocks the release train, owner on holiday")
    page.get_by_role("button", name="Quarantine this test").click()
    page.get_by_role("status").filter(has_text="Test quarantined.").wait_for()

    listed = json.loads(dashboard.cli("quarantine", "list", "--repo", dashboard.repo, "--json"))
    (entry,) = [t for t in listed["tests"] if t["id"] == test_id]
    assert (entry["name"], entry["actor"], entry["automatic"]) == (name, LEAD, False)
    assert entry["reason"] == "blocks the release train, owner on holiday"
    api = dashboard.api("GET", f"/api/v1/repos/{dashboard.repo}/quarantine").json()
    assert test_id in [t["id"] for t in api["tests"]]
    newest_change = page.locator("#quarantine table tbody tr").first.get_by_role("cell").all_inner_texts()
    assert newest_change[1:3] == ["quarantine", LEAD]

    page.get_by_label("Reason").fill("fixed in #4711")
    page.get_by_role("button", name="Release from quarantine").click()
    page.get_by_role("status").filter(has_text="Test released.").wait_for()
    listed = json.loads(dashboard.cli("quarantine", "list", "--repo", dashboard.repo, "--json"))
    assert test_id not in [t["id"] for t in listed["tests"]]


def test_the_run_page_separates_known_flaky_failures_from_new_ones(tab: Tab, dashboard: Dashboard) -> None:
    tab.go(f"/repos/{dashboard.repo}")
    page = tab.page
    runs = page.locator("#runs-title ~ div table tbody tr")
    # The newest run in which a known flaky test failed along with the broken one.
    row = runs.filter(has=page.locator("td:last-child", has_text=re.compile(r"^[1-9]"))).first
    row.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/runs/\d+/attempts/\d+$"))
    new = page.locator("#new-title ~ div table tbody a.test-name").all_inner_texts()
    known = page.locator("#known-title ~ div table tbody tr")
    assert known.count() >= 1
    assert set(known.locator(".badge").all_inner_texts()) <= {"flaky", "quarantined", "passed on retry"}
    assert display_name(*history.BROKEN) in new
    check = page.get_by_role("link", name="FlakeGuard check run on GitHub")
    assert re.fullmatch(rf"https://github\.com/{dashboard.repo}/runs/\d+", check.get_attribute("href") or "")
    tab.shot(dashboard, "run-laptop-light")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("device", ["laptop", "phone"])
def test_pages_render_in_light_and_dark_on_a_laptop_and_a_phone(
    browser: Any, dashboard: Dashboard, login_state: dict[str, Any], scheme: str, device: str
) -> None:
    viewport = LAPTOP if device == "laptop" else PHONE
    context = browser.new_context(
        viewport=viewport, color_scheme=scheme, storage_state=login_state, is_mobile=device == "phone"
    )
    tab = Tab(context.new_page(), dashboard.url)
    test_id = _test_id(tab, dashboard, *history.MAIN_FLAKY)
    for name, path in (
        ("overview", "/"),
        ("repository", f"/repos/{dashboard.repo}"),
        ("test", f"/repos/{dashboard.repo}/tests/{test_id}"),
    ):
        tab.go(path)
        background = tab.page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert (background == "rgb(13, 17, 23)") == (scheme == "dark")
        overflow = tab.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways on a {device}"
        tab.shot(dashboard, f"{name}-{device}-{scheme}")
    context.close()
    assert tab.errors == []
