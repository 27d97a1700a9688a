"""The command line as a newcomer meets it, as real processes: every expected failure is one line with
its exit code; a running `flakeguard up` is found from its folder (or with --home) and a second one
leaves it alone; tests are named as the report prints them; tables fit 80 columns.

About 60 s: one `up`, a second one refused, and ~40 short CLI processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from flakeguard.store.migrate import head_revision
from flakeguard.testing.reports import CaseSpec, SuiteSpec, junit_xml

from ..conftest import PG_ADMIN_URL
from .helpers import ROOT, free_port, process_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SHA = "0123456789abcdef0123456789abcdef01234567"
LONG_CLASS = "com.example.payments.integration.CheckoutFlowTest"


def flakeguard(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`flakeguard ARGS` in `cwd`; the timeout bounds every wait (an unanswered Redis, a database)."""
    return subprocess.run(
        [sys.executable, "-m", "flakeguard", *args],
        cwd=cwd,
        env=env if env is not None else newcomer_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def newcomer_env(**values: str) -> dict[str, str]:
    """Nothing configured: no DATABASE_URL, REDIS_URL or GitHub; the source tree importable."""
    # JSON log lines (LOG_FORMAT), to read them here; a newcomer's terminal shows them as text.
    env = process_env({"PYTHONPATH": str(ROOT / "src"), "COLUMNS": "80", "LOG_FORMAT": "json", **values})
    return {k: v for k, v in env.items() if not k.startswith("FLAKEGUARD_")} | values


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flakeguard: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung Redis)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield int(server.getsockname()[1])


@pytest.fixture
def unmigrated_database() -> Iterator[str]:
    name = f"flakeguard_empty_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_expected_failures_are_one_line_with_an_exit_code_and_nothing_hangs(
    tmp_path: Path, silent_server: int, unmigrated_database: str
) -> None:
    closed = free_port()
    report = ("report", "--repo", "acme/app")
    # Run where nothing was ever set up: the reading commands create nothing.
    one_line_error(flakeguard(tmp_path, *report), 3, "no FlakeGuard database at", "--home DIR")
    assert not (tmp_path / ".flakeguard").exists()
    one_line_error(
        flakeguard(tmp_path, *report, env=newcomer_env(DATABASE_URL=f"postgresql://127.0.0.1:{closed}/x")),
        3,
        f"cannot reach the database at postgresql://127.0.0.1:{closed}/x",
    )
    one_line_error(
        flakeguard(
            tmp_path, "migrate", env=newcomer_env(DATABASE_URL=f"postgresql://u:pw@127.0.0.1:{closed}/x")
        ),
        3,
        "cannot reach the database",
    )
    line = one_line_error(
        flakeguard(tmp_path, *report, env=newcomer_env(DATABASE_URL=unmigrated_database)),
        3,
        "has no FlakeGuard tables yet: run `flakeguard migrate`",
    )
    assert "postgres@" not in line  # the URL is shown without its user (or password)
    one_line_error(flakeguard(tmp_path, "queues", "list"), 3, "no Redis to use", "--home DIR")
    one_line_error(
        flakeguard(
            tmp_path, "queues", "list", env=newcomer_env(REDIS_URL=f"redis://127.0.0.1:{silent_server}")
        ),
        3,
        "did not answer within 5 s",
    )
    one_line_error(
        flakeguard(
            tmp_path,
            *("enqueue", "ingest", "--repo", "acme/app", "--run-id", "7"),
            env=newcomer_env(REDIS_URL=f"redis://127.0.0.1:{closed}"),
        ),
        3,
        "cannot reach Redis",
    )
    ingest = ("ingest", "--repo", "local/app", "--run-id", "1", "--branch", "main")
    one_line_error(
        flakeguard(tmp_path, *ingest, "--sha", "nothex", "r.xml"), 2, "--sha 'nothex' is not a commit id"
    )
    one_line_error(flakeguard(tmp_path, *ingest, "--sha", SHA, "missing.xml"), 2, "missing.xml: no such file")
    one_line_error(flakeguard(tmp_path, "--home", str(tmp_path / "nowhere"), *report), 2, "no such folder")
    one_line_error(
        flakeguard(tmp_path, "recompute", "--repo", "acme/app", "--scope", "tests"),
        2,
        "--scope: Input should be",
    )
    debug = flakeguard(tmp_path, "--debug", *report)
    assert debug.returncode != 0 and "Traceback (most recent call last)" in debug.stderr


def start_up(folder: Path, log: Path, health_port: int) -> subprocess.Popen[bytes]:
    env = newcomer_env(
        HEALTH_CHECK_PORT=str(health_port), METRICS_PORT=str(free_port()), BIND_HOST="127.0.0.1"
    )
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "flakeguard", "up"],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_commands_find_the_running_up_and_a_second_up_leaves_it_alone(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    health_port = free_port()
    up = start_up(folder, tmp_path / "up.log", health_port)
    try:
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{health_port}/health", timeout=2).status_code == 200,
            60,
            "flakeguard up to serve /health",
        )
        # Without any setting, from the folder, from elsewhere with --home, or with FLAKEGUARD_HOME.
        for cwd, extra, env in (
            (folder, (), None),
            (tmp_path, ("--home", str(folder)), None),
            (tmp_path, (), newcomer_env(FLAKEGUARD_HOME=str(folder))),
        ):
            listed = flakeguard(cwd, *extra, "queues", "list", "--json", env=env)
            assert listed.returncode == 0, listed.stderr
            assert set(json.loads(listed.stdout)) == {
                "runs:ingest",
                "runs:analyze",
                "tests:recompute",
                "polling",
            }

        (folder / "report.xml").write_bytes(
            junit_xml([SuiteSpec("s", [CaseSpec("tests.test_a", "test_one")])])
        )
        ingested = flakeguard(
            folder,
            "ingest",
            "--repo",
            "local/app",
            "--run-id",
            "1",
            "--sha",
            SHA,
            "--branch",
            "main",
            "report.xml",
        )
        assert ingested.returncode == 0, ingested.stderr
        repos = json.loads(flakeguard(folder, "repos", "list", "--json").stdout)
        assert repos == [
            {"repository": "local/app", "installationId": None, "defaultBranch": None, "active": False}
        ]

        enqueued = flakeguard(folder, "enqueue", "ingest", "--repo", "acme/app", "--run-id", "999999")
        assert enqueued.returncode == 0 and json.loads(enqueued.stdout)["queue"] == "runs:ingest"
        assert (
            "warning: enqueued without checking that the run exists: GitHub is not configured"
            in enqueued.stderr
        )

        state = (folder / ".flakeguard" / "instance.json").read_bytes()
        second = subprocess.run(
            [sys.executable, "-m", "flakeguard", "up"],
            cwd=folder,
            env=newcomer_env(HEALTH_CHECK_PORT=str(free_port()), METRICS_PORT=str(free_port())),
            capture_output=True,
            text=True,
            timeout=60,
        )
        one_line_error(
            second, 1, "`flakeguard up` already runs in", f"pid {up.pid}", "nothing of it was touched"
        )
        assert (folder / ".flakeguard" / "instance.json").read_bytes() == state
        assert httpx.get(f"http://127.0.0.1:{health_port}/health", timeout=5).status_code == 200
        assert flakeguard(folder, "queues", "list").returncode == 0  # its Redis still runs

        os.kill(up.pid, signal.SIGINT)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    one_line_error(flakeguard(folder, "queues", "list"), 3, "no `flakeguard up` runs in")
    lines = (tmp_path / "up.log").read_text().splitlines()
    events = [json.loads(line) for line in lines]  # one format: every line is JSON
    ready = next(e for e in events if e["msg"] == "flakeguard_ready")
    assert ready["github"] == "not configured" and ready["polling"].startswith(
        "off (GitHub is not configured"
    )
    assert ready["migrations"] == f"migrated empty -> {head_revision()}" and ready["redis_embedded"] is True
    assert not [e for e in events if "Started server process" in e["msg"]]


def test_tests_are_named_as_the_report_prints_them_and_tables_fit_80_columns(tmp_path: Path) -> None:
    cases = [
        CaseSpec("tests.test_module_0", "test_case_000"),
        CaseSpec("tests.test_login.TestLogin", "test_ok"),
        CaseSpec("tests.test_signup.TestSignup", "test_ok"),
        CaseSpec(LONG_CLASS, "test_refund_after_partial_capture"),
    ]
    (tmp_path / "report.xml").write_bytes(junit_xml([SuiteSpec("pytest", cases)]))
    ingest = ("ingest", "--repo", "local/app", "--run-id", "1", "--sha", SHA, "--branch", "main", "--analyze")
    assert flakeguard(tmp_path, *ingest, "report.xml").returncode == 0

    table = flakeguard(tmp_path, "report", "--repo", "local/app")
    assert table.returncode == 0 and max(map(len, table.stdout.splitlines())) <= 80
    assert "_refund_after_partial_capture │" in table.stdout and "com.example" not in table.stdout

    repo = ("--repo", "local/app")

    def quarantine(*test: str, reason: str = "flaky") -> subprocess.CompletedProcess[str]:
        refs = [arg for name in test for arg in ("--test", name)]
        return flakeguard(tmp_path, "quarantine", "add", *repo, *refs, "--reason", reason)

    added = quarantine(
        "tests.test_module_0 › test_case_000", "TestLogin::test_ok", reason="sandbox times out " * 8
    )
    assert added.returncode == 0 and "quarantined 2 of 2" in added.stdout, added.stderr
    line = one_line_error(quarantine("test_ok"), 1, "'test_ok' names 2 tests", "nothing changed")
    assert (
        "tests.test_login.TestLogin › test_ok (id " in line
        and "tests.test_signup.TestSignup › test_ok" in line
    )
    one_line_error(quarantine("test_case_999"), 1, "unknown test(s): test_case_999")

    listed = json.loads(flakeguard(tmp_path, "quarantine", "list", *repo, "--json").stdout)
    by_name = {t["name"]: t for t in listed["tests"]}
    assert by_name["test_ok"]["reason"] == "sandbox times out " * 8  # the full text in --json
    by_id = quarantine(str(by_name["test_case_000"]["id"]), "tests.test_signup.TestSignup::test_ok")
    assert by_id.returncode == 0 and "quarantined 1 of 2" in by_id.stdout

    shown = flakeguard(tmp_path, "quarantine", "list", *repo).stdout.splitlines()
    rows = [row for row in shown if row.startswith("│")]
    assert len(rows) == 3 and max(map(len, shown)) <= 80  # one line each, border whole
    assert any("│ sandbox times o… │" in row for row in rows)
    released = flakeguard(
        tmp_path, "quarantine", "release", *repo, "--test", "test_case_000", "--reason", "fixed"
    )
    assert released.returncode == 0 and "released 1 of 1" in released.stdout
