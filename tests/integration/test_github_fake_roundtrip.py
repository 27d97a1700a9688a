"""The GitHub client against the fake GitHub over real loopback HTTP: the ingest path end to end."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest

from flakeguard.github.client import GitHubApp, token_client
from flakeguard.testing.fake_github import FakeGitHub
from flakeguard.testing.reports import CaseSpec, SuiteSpec, junit_xml, zip_members


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_repository("acme", "project", installation_id=67890)
        yield fake


def _zip() -> bytes:
    return zip_members({"junit.xml": junit_xml([SuiteSpec("s", [CaseSpec("pkg.T", "test_a")])])})


async def test_token_exchange_list_download_and_check_run(gh: FakeGitHub) -> None:
    data = _zip()
    ids = gh.add_run(
        "acme",
        "project",
        12345,
        head_sha="a" * 40,
        branch="main",
        artifacts={"test-results": data, "coverage": b"PK\x05\x06" + b"\0" * 18},
    )
    async with GitHubApp(gh.url, gh.app_id, gh.private_key_pem, backoff_base=0.01) as app:
        installs = await app.app_client().list_installations()
        assert [i["id"] for i in installs] == [67890]
        client = app.installation_client(67890)
        run = await client.get_workflow_run("acme", "project", 12345)
        assert run["head_sha"] == "a" * 40 and run["run_attempt"] == 1
        arts = await client.list_run_artifacts("acme", "project", 12345)
        assert sorted(a["id"] for a in arts) == sorted(ids)
        art = next(a for a in arts if a["name"] == "test-results")
        got = await client.download_artifact(
            "acme",
            "project",
            art["id"],
            max_bytes=1 << 20,
            expected_size=art["size_in_bytes"],
            expected_digest=art["digest"],
        )
        assert got == data
        assert zipfile.ZipFile(io.BytesIO(got)).namelist() == ["junit.xml"]
        created = await client.create_check_run(
            "acme",
            "project",
            {
                "name": "FlakeGuard",
                "head_sha": "a" * 40,
                "status": "completed",
                "conclusion": "neutral",
                "output": {"title": "t", "summary": "s"},
            },
        )
        assert created["id"] == gh.check_runs[0].id
        assert gh.check_runs[0].conclusion == "neutral"

    token_posts = gh.requests_to("/app/installations/*/access_tokens", "POST")
    assert len(token_posts) == 1  # cached for every later call
    assert token_posts[0].headers["authorization"].startswith("Bearer ey")
    blob = [r for r in gh.requests if r.server == "blob"]
    assert len(blob) == 1
    assert "authorization" not in blob[0].headers
    api_repo_calls = [r for r in gh.requests if r.server == "api" and r.path.startswith("/repos/")]
    assert all(r.headers["authorization"].startswith("Bearer ghs_") for r in api_repo_calls)


async def test_plain_token_client(gh: FakeGitHub) -> None:
    gh.add_run("acme", "project", 7, head_sha="b" * 40, artifacts={"test-results": _zip()})
    token = gh.issue_token(None)
    async with token_client(gh.url, token) as client:
        runs = (await client.list_workflow_runs("acme", "project", status="completed")).runs
        assert [r["id"] for r in runs] == [7]
    assert repr(client).count(token) == 0


async def test_repo_endpoints_need_a_token(gh: FakeGitHub) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        r = await http.get(gh.url + "/repos/acme/project/actions/runs")
    assert r.status_code == 401
