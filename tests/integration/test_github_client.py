"""The GitHub client against the fake GitHub: pagination, ETags, retries, limits, downloads, checks.

Every response the fake serves in these tests is validated against GitHub's OpenAPI description."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from flakeguard.github.checks import CheckRunFailure, CheckRunReport, publish_check_run, start_check_run
from flakeguard.github.client import GitHubApp, GitHubClient, token_client
from flakeguard.github.errors import (
    ArtifactExpired,
    ArtifactTooLarge,
    GitHubError,
    RateLimited,
    TransientGitHubError,
    Unauthorized,
)
from flakeguard.metrics import REGISTRY
from flakeguard.testing.fake_github import FakeGitHub, Fault
from flakeguard.testing.openapi import check_fake_responses
from flakeguard.testing.reports import CaseSpec, SuiteSpec, junit_xml, zip_members

OWNER, REPO, INST = "acme", "project", 67890
SHA = "c" * 40


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_repository(OWNER, REPO, installation_id=INST)
        yield fake
        assert check_fake_responses(fake) >= 0


@pytest.fixture
async def app(gh: FakeGitHub) -> AsyncIterator[GitHubApp]:
    async with GitHubApp(
        gh.url, gh.app_id, gh.private_key_pem, backoff_base=0.01, backoff_max=0.05, timeout=5.0
    ) as a:
        yield a


@pytest.fixture
def client(app: GitHubApp) -> GitHubClient:
    return app.installation_client(INST)


def _zip(n: int = 3) -> bytes:
    cases = [CaseSpec("pkg.T", f"test_{i}") for i in range(n)]
    return zip_members({"junit.xml": junit_xml([SuiteSpec("s", cases)])})


def _close(a: datetime, b: datetime, tolerance: float = 3.0) -> bool:
    return abs((a - b).total_seconds()) <= tolerance


# -- pagination and ETags -------------------------------------------------------------------------


async def test_pagination_over_three_pages(gh: FakeGitHub, client: GitHubClient) -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(250):
        gh.add_run(OWNER, REPO, 1000 + i, head_sha=SHA, created_at=base + timedelta(minutes=i))
    runs = (await client.list_workflow_runs(OWNER, REPO)).runs
    assert len(runs) == 250 and len({r["id"] for r in runs}) == 250
    assert runs[0]["id"] == 1249  # newest first
    pages = gh.requests_to("/repos/acme/project/actions/runs")
    assert len(pages) == 3
    assert all("per_page=100" in r.query for r in pages)


async def test_a_filtered_listing_stops_at_githubs_1000_runs_and_says_so() -> None:
    # Its own fake: validating these 2,000 runs against the schema would take 12 s (the shape is
    # validated by every other test here).
    base = datetime(2024, 1, 1, tzinfo=UTC)
    with FakeGitHub() as gh:
        for i in range(1050):
            gh.add_run(OWNER, REPO, 10_000 + i, head_sha=SHA, created_at=base + timedelta(minutes=i))
        async with token_client(gh.url, gh.issue_token(INST)) as client:
            unfiltered = await client.list_workflow_runs(OWNER, REPO, max_pages=None)
            completed = await client.list_workflow_runs(OWNER, REPO, status="completed")
            rest = await client.list_workflow_runs(
                OWNER, REPO, status="completed", created="<2024-01-01T00:50:00Z"
            )
    assert (len(unfiltered.runs), unfiltered.complete) == (1050, True)
    assert (len(completed.runs), completed.total_count, completed.complete) == (1000, 1050, False)
    assert [completed.runs[0]["id"], completed.runs[-1]["id"]] == [11_049, 10_050]  # the newest 1,000
    assert (len(rest.runs), rest.complete) == (50, True)


async def test_artifact_listing_paginates(gh: FakeGitHub, client: GitHubClient) -> None:
    ids = gh.add_run(OWNER, REPO, 5, head_sha=SHA, artifacts={f"a{i}": b"x" for i in range(130)})
    arts = await client.list_run_artifacts(OWNER, REPO, 5)
    assert sorted(a["id"] for a in arts) == sorted(ids)
    assert len(gh.requests_to("/repos/acme/project/actions/runs/5/artifacts")) == 2


async def test_etag_304_reuses_pages_and_costs_no_rate_limit(gh: FakeGitHub, client: GitHubClient) -> None:
    for i in range(150):
        gh.add_run(OWNER, REPO, 2000 + i, head_sha=SHA)
    first = (await client.list_workflow_runs(OWNER, REPO, status="completed")).runs
    assert client.rate_limit is not None
    remaining = client.rate_limit.remaining
    second = (await client.list_workflow_runs(OWNER, REPO, status="completed")).runs
    assert second == first
    assert client.rate_limit.remaining == remaining  # 304s are free
    statuses = [r.status for r in gh.responses if r.template == "/repos/{owner}/{repo}/actions/runs"]
    assert statuses == [200, 200, 304, 304]
    repeat = gh.requests_to("/repos/acme/project/actions/runs")[2:]
    assert all(r.headers.get("if-none-match") for r in repeat)
    # a change shows up
    gh.add_run(OWNER, REPO, 9999, head_sha=SHA)
    third = (await client.list_workflow_runs(OWNER, REPO, status="completed")).runs
    assert third[0]["id"] == 9999


async def test_created_filter(gh: FakeGitHub, client: GitHubClient) -> None:
    gh.add_run(OWNER, REPO, 1, head_sha=SHA, created_at=datetime(2024, 1, 1, 12, tzinfo=UTC))
    gh.add_run(OWNER, REPO, 2, head_sha=SHA, created_at=datetime(2024, 2, 1, 12, tzinfo=UTC))
    runs = (await client.list_workflow_runs(OWNER, REPO, created=">=2024-01-15")).runs
    assert [r["id"] for r in runs] == [2]


# -- auth ---------------------------------------------------------------------------------------


async def test_token_refreshed_once_on_401(gh: FakeGitHub, client: GitHubClient) -> None:
    gh.add_run(OWNER, REPO, 1, head_sha=SHA)
    await client.get_workflow_run(OWNER, REPO, 1)
    gh.expire_tokens()
    run = await client.get_workflow_run(OWNER, REPO, 1)
    assert run["id"] == 1
    assert len(gh.requests_to("/app/installations/*/access_tokens", "POST")) == 2
    gh.inject("/repos/{owner}/{repo}/actions/runs/{run_id}", "expired_token")
    assert (await client.get_workflow_run(OWNER, REPO, 1))["id"] == 1
    assert len(gh.requests_to("/app/installations/*/access_tokens", "POST")) == 3


async def test_persistent_401_raises_unauthorized(gh: FakeGitHub, client: GitHubClient) -> None:
    gh.inject("/repos/{owner}/{repo}/actions/runs/{run_id}", "expired_token", times=-1)
    with pytest.raises(Unauthorized) as e:
        await client.get_workflow_run(OWNER, REPO, 1)
    assert "ghs_" not in str(e.value)


async def test_jwt_from_another_key_is_rejected(gh: FakeGitHub) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    async with GitHubApp(gh.url, gh.app_id, other, backoff_base=0.01) as app:
        with pytest.raises(Unauthorized):
            await app.app_client().list_installations()
        with pytest.raises(Unauthorized):
            await app.installation_client(INST).get_workflow_run(OWNER, REPO, 1)


async def test_app_endpoints_and_repositories(gh: FakeGitHub, app: GitHubApp) -> None:
    gh.add_repository("acme", "other", installation_id=INST)
    gh.add_repository("elsewhere", "x", installation_id=111)
    installs = await app.app_client().list_installations()
    assert sorted(i["id"] for i in installs) == [111, INST]
    inst = await app.app_client().get_repo_installation("elsewhere", "x")
    assert inst["id"] == 111
    repos = await app.installation_client(INST).list_installation_repositories()
    assert sorted(r["full_name"] for r in repos) == ["acme/other", "acme/project"]
    assert [r["full_name"] for r in await app.list_installation_repositories(111)] == ["elsewhere/x"]


# -- retries -------------------------------------------------------------------------------------


async def test_5xx_and_resets_are_retried(gh: FakeGitHub, client: GitHubClient) -> None:
    gh.add_run(OWNER, REPO, 1, head_sha=SHA)
    gh.inject("/repos/{owner}/{repo}/actions/runs/{run_id}", "500", times=2)
    assert (await client.get_workflow_run(OWNER, REPO, 1))["id"] == 1
    gh.inject("/repos/{owner}/{repo}/actions/runs/{run_id}", Fault.reset(), times=1)
    assert (await client.get_workflow_run(OWNER, REPO, 1))["id"] == 1
    assert len(gh.requests_to("/repos/acme/project/actions/runs/1")) == 5


async def test_persistent_5xx_gives_transient_error(gh: FakeGitHub, client: GitHubClient) -> None:
    gh.inject("/repos/*/actions/runs/*", "502", times=-1)
    with pytest.raises(TransientGitHubError) as e:
        await client.get_workflow_run(OWNER, REPO, 1)
    assert e.value.status == 502
    assert e.value.endpoint == "/repos/{owner}/{repo}/actions/runs/{run_id}"
    assert len(gh.requests_to("/repos/acme/project/actions/runs/1")) == 4  # 1 + 3 retries


async def test_slow_response_times_out_then_retries(gh: FakeGitHub) -> None:
    gh.add_run(OWNER, REPO, 1, head_sha=SHA)
    gh.inject("/repos/{owner}/{repo}/actions/runs/{run_id}", Fault.slow(1.0), times=1)
    async with GitHubApp(gh.url, gh.app_id, gh.private_key_pem, backoff_base=0.01, timeout=0.3) as app:
        assert (await app.installation_client(INST).get_workflow_run(OWNER, REPO, 1))["id"] == 1


async def test_writes_are_not_retried_after_sending(gh: FakeGitHub, client: GitHubClient) -> None:
    gh.inject("POST /repos/*/check-runs", "500")
    with pytest.raises(TransientGitHubError):
        await client.create_check_run(OWNER, REPO, {"name": "FlakeGuard", "head_sha": SHA})
    assert len(gh.requests_to("/repos/acme/project/check-runs", "POST")) == 1
    assert gh.check_runs == []


# -- rate limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 429])
async def test_primary_limit_resumes_at_reset(gh: FakeGitHub, client: GitHubClient, status: int) -> None:
    gh.inject("/repos/{owner}/{repo}/actions/runs", Fault.primary_limit(status=status, reset_in=120))
    now = datetime.now(UTC)
    with pytest.raises(RateLimited) as e:
        await client.list_workflow_runs(OWNER, REPO)
    assert e.value.kind == "primary"
    assert _close(e.value.resume_at, now + timedelta(seconds=120))
    # known block: the next call raises without a request
    n = len(gh.requests)
    with pytest.raises(RateLimited):
        await client.get_workflow_run(OWNER, REPO, 1)
    assert len(gh.requests) == n


async def test_exhausted_budget_is_a_primary_limit(gh: FakeGitHub, client: GitHubClient) -> None:
    gh.set_rate_limit_remaining(0, reset_in=300)
    with pytest.raises(RateLimited) as e:
        await client.list_workflow_runs(OWNER, REPO)
    assert e.value.kind == "primary"
    assert _close(e.value.resume_at, datetime.now(UTC) + timedelta(seconds=300))


@pytest.mark.parametrize("status", [403, 429])
async def test_secondary_limit_with_retry_after(gh: FakeGitHub, client: GitHubClient, status: int) -> None:
    gh.inject("/repos/{owner}/{repo}/actions/runs", Fault.secondary_limit(status=status, retry_after=30))
    with pytest.raises(RateLimited) as e:
        await client.list_workflow_runs(OWNER, REPO)
    assert e.value.kind == "secondary"
    assert _close(e.value.resume_at, datetime.now(UTC) + timedelta(seconds=30))


async def test_secondary_limit_without_retry_after_backs_off(gh: FakeGitHub) -> None:
    clock = [1_900_000_000.0]

    def now() -> float:
        return clock[0]

    gh.inject("/repos/{owner}/{repo}/actions/runs", "secondary_limit_no_retry_after", times=2)
    async with GitHubApp(gh.url, gh.app_id, gh.private_key_pem, backoff_base=0.01) as app:
        client = app.installation_client(INST)
        # the fake checks real time on JWTs/tokens; the client's clock only drives limit bookkeeping
        app.auth._clock = __import__("time").time
        client._clock = now
        with pytest.raises(RateLimited) as e:
            await client.list_workflow_runs(OWNER, REPO)
        assert e.value.kind == "secondary"
        assert e.value.resume_at == datetime.fromtimestamp(clock[0] + 60, UTC)
        clock[0] += 61
        with pytest.raises(RateLimited) as e2:
            await client.list_workflow_runs(OWNER, REPO)
        assert e2.value.resume_at == datetime.fromtimestamp(clock[0] + 120, UTC)  # exponential
        clock[0] += 121
        assert (await client.list_workflow_runs(OWNER, REPO)).runs == []


async def test_reserve(gh: FakeGitHub, client: GitHubClient) -> None:
    gh.set_rate_limit_remaining(10, reset_in=600)
    await client.list_workflow_runs(OWNER, REPO)
    client.ensure_budget(5)
    with pytest.raises(RateLimited) as e:
        client.ensure_budget(100)
    assert e.value.kind == "reserve"


# -- artifacts ----------------------------------------------------------------------------------


async def test_download_follows_redirect_without_authorization(gh: FakeGitHub, client: GitHubClient) -> None:
    data = _zip()
    (aid,) = gh.add_run(OWNER, REPO, 1, head_sha=SHA, artifacts={"test-results": data})
    assert await client.download_artifact(OWNER, REPO, aid, max_bytes=1 << 20) == data
    (blob,) = [r for r in gh.requests if r.server == "blob"]
    assert "authorization" not in blob.headers
    assert "urlSignature=" in blob.query
    assert gh.blob_url.split(":")[1] != gh.url.split(":")[1] or gh.blob_url != gh.url


async def test_expired_artifact(gh: FakeGitHub, client: GitHubClient) -> None:
    (aid,) = gh.add_run(OWNER, REPO, 1, head_sha=SHA, artifacts={"test-results": _zip()})
    gh.inject("/repos/*/actions/artifacts/*/zip", "expired_artifact")
    with pytest.raises(ArtifactExpired):
        await client.download_artifact(OWNER, REPO, aid, max_bytes=1 << 20)
    gh.expire_artifact(aid)
    (art,) = await client.list_run_artifacts(OWNER, REPO, 1)
    assert art["expired"] is True
    with pytest.raises(ArtifactExpired):
        await client.download_artifact(OWNER, REPO, aid, max_bytes=1 << 20)


async def test_artifact_size_cap(gh: FakeGitHub, client: GitHubClient) -> None:
    data = _zip(500)
    (aid,) = gh.add_run(OWNER, REPO, 1, head_sha=SHA, artifacts={"test-results": data})
    with pytest.raises(ArtifactTooLarge):
        await client.download_artifact(OWNER, REPO, aid, max_bytes=len(data) - 1)
    with pytest.raises(ArtifactTooLarge):
        await client.download_artifact(OWNER, REPO, aid, max_bytes=100, expected_size=len(data))


async def test_truncated_zip_detected_by_digest_and_retried(gh: FakeGitHub, client: GitHubClient) -> None:
    data = _zip(200)
    (aid,) = gh.add_run(OWNER, REPO, 1, head_sha=SHA, artifacts={"test-results": data})
    gh.inject("/repos/*/actions/artifacts/*/zip", "truncated_zip")
    (art,) = await client.list_run_artifacts(OWNER, REPO, 1)
    got = await client.download_artifact(
        OWNER, REPO, aid, max_bytes=1 << 20, expected_size=art["size_in_bytes"], expected_digest=art["digest"]
    )
    assert got == data
    assert len([r for r in gh.requests if r.server == "blob"]) == 2
    # without the digest the caller gets the bytes as served (the ZIP reader must refuse them)
    gh.inject("/repos/*/actions/artifacts/*/zip", "truncated_zip")
    short = await client.download_artifact(OWNER, REPO, aid, max_bytes=1 << 20)
    assert len(short) < len(data)


async def test_blob_host_reset_is_retried(gh: FakeGitHub, client: GitHubClient) -> None:
    data = _zip()
    (aid,) = gh.add_run(OWNER, REPO, 1, head_sha=SHA, artifacts={"test-results": data})
    gh.inject("/_blob/*", "reset")
    assert await client.download_artifact(OWNER, REPO, aid, max_bytes=1 << 20) == data


async def test_expired_signed_url_is_refused_by_blob_host(gh: FakeGitHub) -> None:
    (aid,) = gh.add_run(OWNER, REPO, 1, head_sha=SHA, artifacts={"test-results": _zip()})
    async with httpx.AsyncClient() as http:
        ok = await http.get(gh.signed_blob_url(aid))
        old = await http.get(gh.signed_blob_url(aid, expires=1_000_000_000))
    assert ok.status_code == 200 and old.status_code == 403


# -- check runs ----------------------------------------------------------------------------------


def _failures(n: int) -> list[CheckRunFailure]:
    return [
        CheckRunFailure(
            f"tests.test_mod.test_{i}",
            "tests/test_mod.py",
            10 + i,
            "assert 1 == 2",
            known_flaky=i % 3 == 0,
            score=0.4 if i % 3 == 0 else None,
            evidence_text="failed 4 of 20 runs",
        )
        for i in range(n)
    ]


async def test_120_failures_make_three_requests(gh: FakeGitHub, client: GitHubClient) -> None:
    report = CheckRunReport(_failures(120), total_tests=500, passed=380)
    pub = await publish_check_run(client, OWNER, REPO, SHA, report)
    assert pub.requests == 3 and pub.annotations == 120 and pub.conclusion == "failure"
    (cr,) = gh.check_runs
    assert len(cr.annotations) == 120 and [
        len(r.get("output", {}).get("annotations", [])) for r in cr.requests
    ] == [50, 50, 20]
    assert cr.name == "FlakeGuard" and cr.head_sha == SHA and cr.conclusion == "failure"
    assert [a["identifier"] for a in cr.actions] == ["quarantine", "reanalyze"]
    anns = await client.list_check_run_annotations(OWNER, REPO, pub.id)
    assert len(anns) == 120


async def test_publish_updates_the_in_progress_run(gh: FakeGitHub, client: GitHubClient) -> None:
    cid = await start_check_run(client, OWNER, REPO, SHA)
    report = CheckRunReport([f for f in _failures(6) if f.known_flaky])
    pub = await publish_check_run(client, OWNER, REPO, SHA, report, check_run_id=cid)
    assert pub.id == cid and pub.conclusion == "neutral"
    assert len(gh.check_runs) == 1 and gh.check_runs[0].status == "completed"
    # re-analysis of a run that already has annotations: a fresh run, no duplicated annotations
    again = await publish_check_run(client, OWNER, REPO, SHA, report, check_run_id=cid)
    assert again.id != cid and len(gh.check_runs) == 2
    assert all(len(c.annotations) == 2 for c in gh.check_runs)


async def test_summary_is_cut_under_the_limit(gh: FakeGitHub, client: GitHubClient) -> None:
    many = [CheckRunFailure(f"t{i}_" + "x" * 150, None, None, "m" * 250) for i in range(2000)]
    pub = await publish_check_run(client, OWNER, REPO, SHA, CheckRunReport(many))
    (cr,) = gh.check_runs
    assert len(cr.output["summary"]) <= 65535 and "not shown" in cr.output["summary"]
    assert pub.requests == 1  # no file → no annotations


async def test_a_long_multibyte_failure_message_is_cut_to_githubs_64_kb(
    gh: FakeGitHub, client: GitHubClient
) -> None:
    # 40,000 characters but 80,000 bytes: a cut by characters alone made GitHub refuse the check run.
    failure = CheckRunFailure("tests.test_mod.test_x", "tests/test_mod.py", 3, "é" * 40_000)
    await publish_check_run(client, OWNER, REPO, SHA, CheckRunReport([failure]))
    (cr,) = gh.check_runs
    (annotation,) = cr.annotations
    assert 60_000 <= len(annotation["message"].encode()) <= 64 * 1024
    assert annotation["message"].endswith("é")  # cut between characters


@pytest.mark.parametrize(
    "body",
    [
        {
            "output": {
                "title": "t",
                "summary": "s",
                "annotations": [
                    {
                        "path": "a",
                        "start_line": 1,
                        "end_line": 1,
                        "annotation_level": "failure",
                        "message": "m",
                    }
                ]
                * 51,
            }
        },
        {"output": {"title": "t", "summary": "s" * 65536}},
        {"actions": [{"label": "x" * 21, "description": "d", "identifier": "i"}]},
        {"actions": [{"label": "l", "description": "d", "identifier": "i"}] * 4},
        {"status": "completed"},
        {
            "output": {
                "title": "t",
                "summary": "s",
                "annotations": [
                    {"path": "a", "start_line": 1, "end_line": 1, "annotation_level": "error", "message": "m"}
                ],
            }
        },
    ],
)
async def test_fake_enforces_check_run_limits(
    gh: FakeGitHub, client: GitHubClient, body: dict[str, object]
) -> None:
    with pytest.raises(GitHubError) as e:
        await client.create_check_run(OWNER, REPO, {"name": "FlakeGuard", "head_sha": SHA, **body})
    assert e.value.status == 422


# -- metrics -------------------------------------------------------------------------------------


async def test_metrics_use_endpoint_templates(gh: FakeGitHub, client: GitHubClient) -> None:
    gh.add_run(OWNER, REPO, 77, head_sha=SHA, artifacts={"test-results": _zip()})
    await client.list_run_artifacts(OWNER, REPO, 77)
    labels = {
        s.labels.get("endpoint")
        for m in REGISTRY.collect()
        if m.name == "flakeguard_worker_github_api_calls"
        for s in m.samples
    }
    assert "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts" in labels
    assert not any(label and ("acme" in label or "77" in label) for label in labels)
    remaining = REGISTRY.get_sample_value(
        "flakeguard_worker_github_rate_limit_remaining", {"resource": "core"}
    )
    assert remaining is not None and remaining < 5000
