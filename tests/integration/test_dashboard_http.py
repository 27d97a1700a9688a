"""The dashboard's access rules over HTTP, against real `flakeguard worker` processes: reading needs a
session unless WEB_PUBLIC=true, acting always needs one, every POST form needs its CSRF token, the
session cookie is HttpOnly and SameSite, and hostile input is escaped or refused without harm.

~20 s: two worker processes (one private, one public) over one database fed by `flakeguard ingest`.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from flakeguard.model import Outcome
from flakeguard.testing.reports import CaseSpec, SuiteSpec, junit_xml
from tests.conftest import REDIS_URL, empty_database

from .helpers import ROOT, free_port, process_env, running_worker

pytestmark = pytest.mark.integration

HOSTILE = '<script>alert("x")</script>'


@dataclass
class Servers:
    private: str
    public: str
    token: str
    env: dict[str, str]
    log: Path


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def _login(client: httpx.Client, token: str, name: str = "Ada") -> httpx.Response:
    form = client.get("/login")
    return client.post(
        "/login", data={"csrf_token": _csrf(form.text), "token": token, "name": name, "next": "/"}
    )


@pytest.fixture(scope="module")
def servers(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("dashboard-http")
    empty_database(pg_database)
    prefix = f"fgwebhttp{uuid.uuid4().hex[:8]}"
    token = secrets.token_urlsafe(24)
    suite = SuiteSpec(
        "tests.web",
        [
            CaseSpec("tests.web.T", "test_ok"),
            CaseSpec("tests.web.T", HOSTILE, Outcome.FAILED, message=f"boom {HOSTILE}"),
        ],
    )
    (tmp / "report.xml").write_bytes(junit_xml([suite]))
    base = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": prefix,
        "POLLING_ENABLED": "false",
        "FLAKEGUARD_API_TOKEN": token,
        "FLAKEGUARD_DATA_DIR": str(tmp / "data"),
        "LOG_LEVEL": "info",
    }
    env = process_env(base)
    subprocess.run(
        [sys.executable, "-m", "flakeguard", "ingest", "--repo", "acme/app", "--run-id", "7",
         "--sha", "a" * 40, "--branch", "main", "--analyze", str(tmp / "report.xml")],
        env=env, cwd=ROOT, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    private_port, public_port = free_port(), free_port()
    try:
        with ExitStack() as stack:
            stack.enter_context(
                running_worker(
                    {**env, "HEALTH_CHECK_PORT": str(private_port), "METRICS_PORT": str(free_port())},
                    tmp / "private.log",
                )
            )
            stack.enter_context(
                running_worker(
                    {
                        **env,
                        "WEB_PUBLIC": "true",
                        "HEALTH_CHECK_PORT": str(public_port),
                        "METRICS_PORT": str(free_port()),
                    },
                    tmp / "public.log",
                )
            )
            yield Servers(
                private=f"http://127.0.0.1:{private_port}",
                public=f"http://127.0.0.1:{public_port}",
                token=token,
                env=env,
                log=tmp / "private.log",
            )
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def _test_ids(client: httpx.Client) -> dict[str, int]:
    page = client.get("/repos/acme/app")
    assert page.status_code == 200
    ids = dict(
        re.findall(r'/repos/acme/app/tests/(\d+)" class="test-name">([^<]*(?:&lt;[^<]*)*)</a>', page.text)
    )
    return {name: int(test_id) for test_id, name in ids.items()}


def _quarantined(servers: Servers) -> list[int]:
    response = httpx.get(
        servers.private + "/api/v1/repos/acme/app/quarantine",
        headers={"Authorization": f"Bearer {servers.token}"},
    )
    return [t["id"] for t in response.json()["tests"]]


def _test_id(servers: Servers) -> int:
    with httpx.Client(base_url=servers.private) as client:
        _login(client, servers.token)
        page = client.get("/repos/acme/app", params={"q": "test_ok"})
    match = re.search(r"/repos/acme/app/tests/(\d+)", page.text)
    assert match
    return int(match.group(1))


def test_the_worker_logs_the_dashboard_url_at_start_up(servers: Servers) -> None:
    port = servers.private.rsplit(":", 1)[1]
    events = [json.loads(line) for line in servers.log.read_text().splitlines() if line.startswith("{")]
    (ready,) = [e for e in events if e.get("msg") == "dashboard_ready"]
    assert ready["url"] == f"http://localhost:{port}/"
    assert ready["public"] is False and ready["login"] is True
    assert servers.token not in servers.log.read_text()


def test_without_a_session_every_page_sends_the_reader_to_the_login_form(servers: Servers) -> None:
    for path in ("/", "/repos/acme/app", "/repos/acme/app/tests/1", "/repos/acme/app/runs/7"):
        response = httpx.get(servers.private + path)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/login?next={path}"  # back here after logging in


def test_login_sets_an_httponly_samesite_session_cookie_and_refuses_a_wrong_token(servers: Servers) -> None:
    with httpx.Client(base_url=servers.private) as client:
        wrong = _login(client, "not-the-token")
        assert wrong.status_code == 401 and "That token is not right." in wrong.text
        assert "flakeguard_session" not in client.cookies
        right = _login(client, servers.token)
        assert right.status_code == 303 and right.headers["location"] == "/"
        cookie = right.headers["set-cookie"].lower()
        assert "flakeguard_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert "secure" not in cookie  # plain http on loopback; over https the cookie is Secure
        assert client.get("/").status_code == 200


def test_a_tampered_session_cookie_is_no_session(servers: Servers) -> None:
    with httpx.Client(base_url=servers.private) as client:
        _login(client, servers.token)
        value = client.cookies["flakeguard_session"]
        client.cookies.set("flakeguard_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
        assert client.get("/").status_code == 303


def test_login_only_redirects_to_this_site(servers: Servers) -> None:
    with httpx.Client(base_url=servers.private) as client:
        form = client.get("/login")
        for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            response = client.post(
                "/login", data={"csrf_token": _csrf(form.text), "token": servers.token, "next": target}
            )
            assert response.status_code == 303 and response.headers["location"] == "/", target


def test_every_post_form_needs_its_csrf_token(servers: Servers) -> None:
    test_id = _test_id(servers)
    action = f"/repos/acme/app/tests/{test_id}/quarantine"
    with httpx.Client(base_url=servers.private) as client:
        # Login itself: without the token, or with a token of another browser's cookie.
        assert client.post("/login", data={"token": servers.token}).status_code == 403
        with httpx.Client(base_url=servers.private) as other:
            foreign = _csrf(other.get("/login").text)
        client.get("/login")
        assert client.post("/login", data={"token": servers.token, "csrf_token": foreign}).status_code == 403
        _login(client, servers.token)
        page = client.get(f"/repos/acme/app/tests/{test_id}")
        token = _csrf(page.text)
        change = {"action": "quarantine", "reason": "csrf probe"}
        assert client.post(action, data=change).status_code == 403
        assert client.post(action, data={**change, "csrf_token": foreign}).status_code == 403
        assert client.post(action, data={**change, "csrf_token": token[:-3] + "xyz"}).status_code == 403
        cross_site = client.post(
            action, data={**change, "csrf_token": token}, headers={"Origin": "https://evil.example"}
        )
        assert cross_site.status_code == 403
        assert test_id not in _quarantined(servers)
        done = client.post(action, data={**change, "csrf_token": token})
        assert done.status_code == 303
        assert test_id in _quarantined(servers)
        release = client.post(action, data={"action": "release", "reason": "probe done", "csrf_token": token})
        assert release.status_code == 303 and test_id not in _quarantined(servers)


def test_a_change_without_a_reason_is_refused_and_changes_nothing(servers: Servers) -> None:
    test_id = _test_id(servers)
    with httpx.Client(base_url=servers.private) as client:
        _login(client, servers.token)
        token = _csrf(client.get(f"/repos/acme/app/tests/{test_id}").text)
        for data in ({"action": "quarantine", "reason": "  "}, {"action": "delete", "reason": "x"}):
            response = client.post(
                f"/repos/acme/app/tests/{test_id}/quarantine", data={**data, "csrf_token": token}
            )
            assert response.status_code == 422 and 'role="alert"' in response.text
    assert test_id not in _quarantined(servers)


def test_web_public_opens_reading_but_changes_still_need_the_token(servers: Servers) -> None:
    test_id = _test_id(servers)
    with httpx.Client(base_url=servers.public) as client:
        assert client.get("/").status_code == 200
        page = client.get(f"/repos/acme/app/tests/{test_id}")
        assert page.status_code == 200
        assert "Quarantine this test" not in page.text and "Log in" in page.text
        csrf = _csrf(client.get("/login").text)
        change = {"action": "quarantine", "reason": "anonymous", "csrf_token": csrf}
        refused = client.post(f"/repos/acme/app/tests/{test_id}/quarantine", data=change)
        assert refused.status_code == 401
    assert test_id not in _quarantined(servers)


def test_hostile_names_are_escaped_and_bad_queries_fall_back_to_defaults(servers: Servers) -> None:
    with httpx.Client(base_url=servers.private) as client:
        _login(client, servers.token)
        page = client.get(
            "/repos/acme/app", params={"page": "-3", "per_page": "many", "sort": "1;drop", "q": HOSTILE}
        )
        assert page.status_code == 200
        assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        hostile_id = next(i for name, i in _test_ids(client).items() if "script" in name)
        test_page = client.get(f"/repos/acme/app/tests/{hostile_id}")
        assert test_page.status_code == 200 and HOSTILE not in test_page.text
        for path in ("/repos/acme/nothing", "/repos/acme/app/tests/999999", "/repos/acme/app/runs/99"):
            missing = client.get(path)
            assert missing.status_code == 404 and "text/html" in missing.headers["content-type"], path
