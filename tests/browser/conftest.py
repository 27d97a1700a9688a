"""One FlakeGuard server with a database filled by the real pipeline, and one Chromium, shared by the
browser tests of a module (starting them is most of the cost).

The server is a real `flakeguard worker` process; the history is published on the fake GitHub
(`tests/browser/history.py`), enqueued through the API, ingested and analysed by the worker, then
re-scored once with `flakeguard recompute` (the analyses of concurrently ingested runs may each have
seen only part of the history). The browser is the system's Chromium driven by Playwright.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from bullmq import Queue

from flakeguard.jobs.connection import with_socket_timeout
from flakeguard.testing.fake_github import FakeGitHub
from tests.browser import history
from tests.conftest import REDIS_URL, empty_database
from tests.integration.helpers import ROOT, free_port, process_env, running_worker, wait_for

CHROMIUM = os.environ.get("FLAKEGUARD_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections are refused on a closed network
# and show up as errors.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("FLAKEGUARD_SCREENSHOTS")  # a directory; unset: the test's tmp dir


@dataclass
class Dashboard:
    url: str
    token: str
    env: dict[str, str]
    repo: str
    screenshots: Path

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "flakeguard", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def report(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.cli("report", "--repo", self.repo, "--format", "json"))
        return parsed

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kwargs)


def _analysed(redis_prefix: str, job_ids: list[str]) -> bool:
    async def go() -> bool:
        queue = Queue("runs:analyze", {"connection": with_socket_timeout(REDIS_URL), "prefix": redis_prefix})
        try:
            for job_id in job_ids:
                state = str(await queue.getJobState(job_id))
                assert state != "failed", f"{job_id} failed"
                if state != "completed":
                    return False
            return True
        finally:
            await queue.close()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def dashboard(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    tmp = tmp_path_factory.mktemp("dashboard")
    prefix = f"fgweb{uuid.uuid4().hex[:10]}"
    token = secrets.token_urlsafe(24)
    empty_database(pg_database)
    with FakeGitHub() as gh:
        runs = history.publish(gh)
        key = tmp / "app.pem"
        key.write_text(gh.private_key_pem)
        port = free_port()
        env = process_env(
            {
                "DATABASE_URL": pg_database,
                "REDIS_URL": REDIS_URL,
                "REDIS_PREFIX": prefix,
                "GITHUB_API_URL": gh.url,
                "GITHUB_APP_ID": str(gh.app_id),
                "GITHUB_PRIVATE_KEY": str(key),
                "HEALTH_CHECK_PORT": str(port),
                "METRICS_PORT": str(free_port()),
                "POLLING_ENABLED": "false",
                "FLAKEGUARD_API_TOKEN": token,
                "FLAKEGUARD_DATA_DIR": str(tmp / "data"),
                "LOG_LEVEL": "warn",
            }
        )
        try:
            with running_worker(env, tmp / "worker.log"):
                board = Dashboard(
                    url=f"http://127.0.0.1:{port}",
                    token=token,
                    env=env,
                    repo=f"{history.OWNER}/{history.REPO}",
                    screenshots=Path(SCREENSHOTS) if SCREENSHOTS else tmp / "screenshots",
                )
                board.screenshots.mkdir(parents=True, exist_ok=True)
                for run in runs:
                    payload = {
                        "workflowRunId": run.run_id,
                        "repository": {
                            "owner": history.OWNER,
                            "repo": history.REPO,
                            "installationId": history.INSTALLATION,
                        },
                        "priority": "normal",
                        "metadata": {"runAttempt": run.attempt},
                    }
                    response = board.api("POST", "/api/v1/queues/runs:ingest/jobs", json=payload)
                    assert response.status_code == 202, response.text
                jobs = [f"analyze-{history.OWNER}-{history.REPO}-{r.run_id}-{r.attempt}" for r in runs]
                wait_for(lambda: _analysed(prefix, jobs), 120, "every run analysed", interval=0.5)
                board.cli("recompute", "--repo", board.repo)
                yield board
        finally:
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
            client.close()


@pytest.fixture(scope="module")
def browser(dashboard: Dashboard) -> Iterator[Any]:
    """Chromium, started after the server is filled: Playwright's sync API runs an event loop in this
    thread, so the fill's asyncio.run() calls must come first."""
    if not Path(CHROMIUM).exists():
        assert os.environ.get("CI") != "true", "CI must run the browser tests: `make test` installs chromium"
        pytest.skip(f"no Chromium at {CHROMIUM} (`make services` installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
