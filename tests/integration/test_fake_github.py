"""The fake GitHub holds to GitHub's behaviour where a client could come to rely on leniency
(../shared/github/API-NOTES.md and the OpenAPI subset). Every answer is validated against the
OpenAPI description at the end of each test."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from flakeguard.testing.fake_github import FakeGitHub
from flakeguard.testing.openapi import check_fake_responses

OWNER, REPO, INST = "acme", "project", 67890
SHA = "c" * 40
RATE_HEADERS = {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset"}


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_repository(OWNER, REPO, installation_id=INST)
        yield fake
        check_fake_responses(fake)


@pytest.fixture
def token(gh: FakeGitHub) -> str:
    return gh.issue_token(INST)


@pytest.fixture
def api(gh: FakeGitHub, token: str) -> Iterator[httpx.Client]:
    headers = {"user-agent": "fidelity-test", "authorization": f"Bearer {token}"}
    with httpx.Client(base_url=gh.url, headers=headers) as client:
        yield client


def remaining(response: httpx.Response) -> int:
    return int(response.headers["x-ratelimit-remaining"])


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- the edge and the order of checks ---------------------------------------------------------


def test_a_request_without_a_user_agent_is_refused_before_anything_else(gh: FakeGitHub, token: str) -> None:
    host, port = urlsplit(gh.url).hostname, urlsplit(gh.url).port
    conn = http.client.HTTPConnection(str(host), port, timeout=5)  # sends no User-Agent of its own
    conn.request("GET", f"/repos/{OWNER}/{REPO}/actions/runs", headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 403
    assert b"User-Agent" in body and response.getheader("content-type", "").startswith("text/plain")
    assert not RATE_HEADERS & {k.lower() for k in response.headers}


def test_an_unknown_api_version_is_a_400_and_the_supported_ones_are_served(api: httpx.Client) -> None:
    path = f"/repos/{OWNER}/{REPO}/actions/runs"
    refused = api.get(path, headers={"x-github-api-version": "1999-01-01"})
    assert refused.status_code == 400 and "1999-01-01" in refused.json()["message"]
    assert set(refused.headers) >= RATE_HEADERS  # an answer to a known caller: it costs a call
    for version in ("2022-11-28", "2026-03-10"):
        served = api.get(path, headers={"x-github-api-version": version})
        assert (served.status_code, served.headers["x-github-api-version-selected"]) == (200, version)
    assert api.get(path).headers["x-github-api-version-selected"] == "2022-11-28"  # the default


def test_a_credential_that_does_not_resolve_is_a_free_401_without_rate_limit_headers(
    gh: FakeGitHub, api: httpx.Client
) -> None:
    bogus = {"authorization": "Bearer ghs_" + "x" * 36}
    for extra in ({}, {"x-github-api-version": "1999-01-01"}):  # the credential is judged first
        answer = api.get(f"/repos/{OWNER}/{REPO}/actions/runs", headers={**bogus, **extra})
        assert (answer.status_code, answer.json()["message"]) == (401, "Bad credentials")
        assert not RATE_HEADERS & set(answer.headers)
    gh.expire_tokens()
    expired = api.get(f"/repos/{OWNER}/{REPO}/actions/runs")
    assert expired.status_code == 401 and not RATE_HEADERS & set(expired.headers)


def test_no_credential_is_a_401_charged_to_the_anonymous_60_an_hour(gh: FakeGitHub) -> None:
    with httpx.Client(base_url=gh.url, headers={"user-agent": "fidelity-test"}) as anonymous:
        first = anonymous.get(f"/repos/{OWNER}/{REPO}/actions/runs")
        second = anonymous.get(f"/repos/{OWNER}/{REPO}/actions/runs")
    assert (first.status_code, first.json()["message"]) == (401, "Requires authentication")
    assert first.headers["x-ratelimit-limit"] == "60"
    assert (remaining(first), remaining(second)) == (59, 58)


# -- the primary budget -----------------------------------------------------------------------


def test_errors_spend_the_budget_and_carry_its_headers_while_304s_and_rate_limit_are_free(
    gh: FakeGitHub, api: httpx.Client
) -> None:
    gh.add_repository("elsewhere", "x", installation_id=111)
    gh.add_run(OWNER, REPO, 7, head_sha=SHA)
    missing = api.get(f"/repos/{OWNER}/{REPO}/actions/runs/999")
    foreign = api.get("/repos/elsewhere/x/actions/runs")  # another installation's repository
    invalid = api.post(f"/repos/{OWNER}/{REPO}/check-runs", json={"name": "FlakeGuard"})
    found = api.get(f"/repos/{OWNER}/{REPO}/actions/runs/7")
    assert [r.status_code for r in (missing, foreign, invalid, found)] == [404, 404, 422, 200]
    assert [remaining(r) for r in (missing, foreign, invalid, found)] == [4999, 4998, 4997, 4996]
    unchanged = api.get(
        f"/repos/{OWNER}/{REPO}/actions/runs/7", headers={"if-none-match": found.headers["etag"]}
    )
    assert (unchanged.status_code, remaining(unchanged)) == (304, 4996)
    limits = api.get("/rate_limit")
    assert remaining(limits) == limits.json()["resources"]["core"]["remaining"] == 4996
    assert remaining(api.get("/rate_limit")) == 4996


def test_a_spent_budget_answers_403_until_its_reset(gh: FakeGitHub, api: httpx.Client) -> None:
    gh.set_rate_limit_remaining(1, reset_in=600)
    assert api.get(f"/repos/{OWNER}/{REPO}/actions/runs").status_code == 200
    refused = api.get(f"/repos/{OWNER}/{REPO}/actions/runs")
    assert refused.status_code == 403 and refused.json()["message"].startswith("API rate limit exceeded")
    assert remaining(refused) == 0
    assert api.get("/rate_limit").status_code == 200  # still answered, for free


# -- workflow runs and artifacts --------------------------------------------------------------


def test_a_filtered_run_listing_stops_at_1000_results(gh: FakeGitHub, api: httpx.Client) -> None:
    base = datetime(2024, 1, 1).astimezone()
    for i in range(1005):
        gh.add_run(OWNER, REPO, 1 + i, head_sha=SHA, created_at=base + timedelta(minutes=i))
    path = f"/repos/{OWNER}/{REPO}/actions/runs"
    first = api.get(path, params={"status": "completed", "per_page": 5})
    last = api.get(path, params={"status": "completed", "per_page": 5, "page": 200})
    beyond = api.get(path, params={"status": "completed", "per_page": 5, "page": 201})
    unfiltered = api.get(path, params={"per_page": 5, "page": 201})
    assert first.json()["total_count"] == last.json()["total_count"] == 1005  # every match is counted
    assert '&page=200>; rel="last"' in first.headers["link"]  # ... but 1,000 are listed
    assert [r["id"] for r in last.json()["workflow_runs"]] == [10, 9, 8, 7, 6]  # results 996..1000
    assert set(re.findall(r'rel="(\w+)"', last.headers["link"])) == {"prev", "first"}
    assert beyond.json()["workflow_runs"] == []
    assert [r["id"] for r in unfiltered.json()["workflow_runs"]] == [5, 4, 3, 2, 1]


def test_a_runs_artifacts_are_listed_across_its_attempts_each_made_during_its_attempt(
    gh: FakeGitHub, api: httpx.Client
) -> None:
    gh.add_run(
        OWNER,
        REPO,
        42,
        head_sha=SHA,
        created_at=datetime.now().astimezone() - timedelta(hours=2),
        artifacts={"test-results": b"first", "coverage": b"c"},
    )
    (rerun,) = gh.add_run(OWNER, REPO, 42, head_sha=SHA, run_attempt=2, artifacts={"test-results": b"second"})
    listed = api.get(f"/repos/{OWNER}/{REPO}/actions/runs/42/artifacts").json()
    assert listed["total_count"] == 3
    assert sorted(a["name"] for a in listed["artifacts"]) == ["coverage", "test-results", "test-results"]
    assert not any("attempt" in key for a in listed["artifacts"] for key in a)  # GitHub does not say which
    first = api.get(f"/repos/{OWNER}/{REPO}/actions/runs/42/attempts/1").json()
    second = api.get(f"/repos/{OWNER}/{REPO}/actions/runs/42/attempts/2").json()
    assert when(second["run_started_at"]) > when(first["updated_at"])  # a re-run starts after the last ended
    for artifact in listed["artifacts"]:
        attempt = second if artifact["id"] == rerun else first
        assert when(attempt["run_started_at"]) <= when(artifact["created_at"]) <= when(attempt["updated_at"])


# -- request bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"name": "FlakeGuard", "head_sha": SHA, "details_url": None},  # not nullable
        {"name": 5, "head_sha": SHA},
        {
            "name": "FlakeGuard",
            "head_sha": SHA,
            "output": {"title": "t", "summary": "s", "images": [{"alt": "a"}]},
        },
        {
            "name": "FlakeGuard",
            "head_sha": SHA,
            "output": {"summary": "s"},
        },  # a new run's output needs a title
    ],
)
def test_check_run_bodies_are_checked_against_the_openapi_schema(
    api: httpx.Client, body: dict[str, object]
) -> None:
    answer = api.post(f"/repos/{OWNER}/{REPO}/check-runs", json=body)
    assert answer.status_code == 422 and answer.json()["message"].startswith("Invalid request.")
    assert all(e["resource"] == "CheckRun" for e in answer.json()["errors"])


def test_an_update_to_completed_needs_a_conclusion_and_stale_is_githubs_alone(api: httpx.Client) -> None:
    created = api.post(f"/repos/{OWNER}/{REPO}/check-runs", json={"name": "FlakeGuard", "head_sha": SHA})
    path = f"/repos/{OWNER}/{REPO}/check-runs/{created.json()['id']}"
    assert api.patch(path, json={"status": "completed"}).status_code == 422
    assert api.patch(path, json={"conclusion": "stale"}).status_code == 422
    done = api.patch(path, json={"status": "completed", "conclusion": "success"})
    assert (done.status_code, done.json()["status"], done.json()["conclusion"]) == (
        200,
        "completed",
        "success",
    )


def test_a_body_that_is_not_a_json_object_is_a_400(api: httpx.Client) -> None:
    path = f"/repos/{OWNER}/{REPO}/check-runs"
    not_json = api.post(path, content=b"{", headers={"content-type": "application/json"})
    a_list = api.post(path, json=["FlakeGuard"])
    assert [not_json.json()["message"], a_list.json()["message"]] == [
        "Problems parsing JSON",
        "Body should be a JSON object",
    ]
