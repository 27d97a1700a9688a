"""The demo from the README, hands off: the standalone fake GitHub, a worker with polling on, a report.

Nobody enqueues anything: polling discovers `acme/project` through the App's installations, finds its
completed runs (30, drained in follow-up polls of POLLING_BATCH_SIZE = 10), ingests and analyses
them; `flakeguard report` then names the generated flaky tests
and the always-failing one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flakeguard.config import Settings

from .helpers import ROOT, free_port, process_env, running_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def report(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "flakeguard", "report", "--repo", "acme/project", "--format", "json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    parsed: dict[str, object] = json.loads(out.stdout)
    return parsed


def test_polling_finds_the_demo_repository_and_the_report_names_its_flaky_and_broken_tests(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flakeguard.testing.fake_github",
            "--port",
            str(port),
            "--runs",
            "30",
            "--tests-per-run",
            "20",
            "--key-file",
            str(tmp_path / "app.pem"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert fake.stdout is not None
        printed = dict(
            line.strip().split("=", 1) for line in (fake.stdout.readline() for _ in range(4)) if "=" in line
        )
        assert printed["GITHUB_API_URL"] == f"http://127.0.0.1:{port}"
        env = process_env(
            {
                **printed,
                "DATABASE_URL": str(settings.database_url),
                "REDIS_URL": str(settings.redis_url),
                "REDIS_PREFIX": settings.redis_prefix,
                "POLLING_ENABLED": "true",
                "HEALTH_CHECK_PORT": str(free_port()),
                "METRICS_PORT": str(free_port()),
                "FLAKEGUARD_DATA_DIR": str(tmp_path / "data"),
            }
        )

        def analysed_everything() -> dict[str, object] | None:
            current = report(env)
            tests = current["tests"]
            assert isinstance(tests, list)
            done = len(tests) == 20 and all(t["executions"] == 30 for t in tests)
            return current if done else None

        with running_worker(env, tmp_path / "worker.log"):
            final = wait_for(
                analysed_everything, 240, "polling to ingest and analyse all 30 runs", interval=1
            )
    finally:
        fake.terminate()
        fake.wait(10)

    tests = final["tests"]
    assert isinstance(tests, list)
    by_name = {t["name"]: t for t in tests}
    assert by_name["test_case_000"]["status"] == "broken"  # the generator's always-failing test
    # The generator's flaky tests (1 and 2, failing 30 % of runs on unique commits) are caught by the
    # statistical rule on `main` (20 of the 30 runs); nothing else is called flaky.
    flaky = {name for name, t in by_name.items() if t["status"] == "flaky"}
    assert flaky == {"test_case_001", "test_case_002"}, {n: by_name[n]["evidence"] for n in flaky}
