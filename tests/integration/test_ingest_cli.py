"""`flakeguard ingest` as a real process: folders, ZIPs, JSON, refusals, exit codes, --analyze, SQLite."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from flakeguard.model import Outcome
from flakeguard.testing.reports import CaseSpec, SuiteSpec, junit_xml, zip_members

from .helpers import process_env
from .test_cli import flakeguard

pytestmark = pytest.mark.integration

RUN_ARGS = ["--repo", "acme/local", "--run-id", "4711", "--sha", "d" * 40, "--branch", "main"]
XXE = b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><testsuite>&x;</testsuite>'
TRUNCATED = b'<?xml version="1.0"?>\n<testsuite name="s">\n  <testcase classname="c" name="n">\n'


def pg_env(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return process_env(
        {
            "DATABASE_URL": database_url,
            "FLAKEGUARD_DATA_DIR": str(tmp_path / "data"),
            "LOG_LEVEL": "warn",
            **extra,
        }
    )


def api_report(outcome: Outcome = Outcome.PASSED) -> bytes:
    return junit_xml(
        [
            SuiteSpec(
                "tests.api",
                [
                    CaseSpec("tests.api.T", "test_ok", file="tests/api.py", line=3),
                    CaseSpec("tests.api.T", "test_sometimes", outcome=outcome),
                    CaseSpec("tests.api.T", "test_flaky", flaky_failures=1),
                ],
            )
        ]
    )


def db_report() -> bytes:
    return junit_xml([SuiteSpec("tests.db", [CaseSpec("tests.db.T", f"test_{i}") for i in range(4)])])


def reports_folder(root: Path, *extra: tuple[str, bytes]) -> Path:
    folder = root / "test-results"
    (folder / "unit").mkdir(parents=True)
    (folder / "unit" / "api.xml").write_bytes(api_report(Outcome.FAILED))
    (folder / "db.xml").write_bytes(db_report())
    (folder / "notes.txt").write_text("not a report")
    for name, data in extra:
        (folder / name).write_bytes(data)
    return folder


def query(database_url: str, sql: str) -> list[Any]:
    async def go() -> list[Any]:
        conn = await asyncpg.connect(database_url)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(go())


def test_a_folder_is_stored_and_a_second_run_stores_nothing_twice(clean_pg: str, tmp_path: Path) -> None:
    env = pg_env(clean_pg, tmp_path)
    folder = reports_folder(tmp_path)
    first = flakeguard(env, "ingest", *RUN_ARGS, "--started-at", "2024-05-01T10:00:00Z", str(folder))
    assert first.returncode == 0, first.stderr
    # 3 + 1 rerun in api.xml, 4 in db.xml; notes.txt ignored.
    assert "2 report(s), 7 test(s) in the run, 8 execution(s) read, 8 new" in " ".join(first.stdout.split())
    second = flakeguard(env, "ingest", *RUN_ARGS, str(folder), "--json")
    assert second.returncode == 0, second.stderr
    data = json.loads(second.stdout)
    assert (data["executions"], data["executionsNew"], data["tests"]) == (8, 0, 7)
    assert query(clean_pg, "SELECT count(*) FROM test_executions") == [(8,)]
    sources = {s for (s,) in query(clean_pg, "SELECT DISTINCT source FROM test_executions")}
    assert sources == {"test-results!unit/api.xml", "test-results!db.xml"}
    (run,) = query(
        clean_pg,
        "SELECT run_id, run_attempt, head_sha, branch, event, started_at, executions_total, tests_failed"
        " FROM workflow_runs",
    )
    assert run[:5] == (4711, 1, "d" * 40, "main", "push")
    assert run[5].isoformat() == "2024-05-01T10:00:00+00:00"
    assert run[6:] == (8, 2)  # test_sometimes failed; test_flaky failed once, then passed


def test_a_zip_with_json_output(clean_pg: str, tmp_path: Path) -> None:
    archive = tmp_path / "junit-results.zip"
    archive.write_bytes(zip_members({"reports/api.xml": api_report(), "reports/db.xml": db_report()}))
    result = flakeguard(
        pg_env(clean_pg, tmp_path), "ingest", *RUN_ARGS, "--attempt", "2", "--event", "pull_request",
        "--json", str(archive),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data == {
        "repository": "acme/local",
        "workflowRunId": 4711,
        "runAttempt": 2,
        "outcome": "ingested",
        "artifacts": 1,
        "reports": 2,
        "executions": 8,
        "executionsNew": 8,
        "tests": 7,
        "refused": [],
        "analysis": None,
    }
    assert query(clean_pg, "SELECT run_attempt, event FROM workflow_runs") == [(2, "pull_request")]
    sources = {s for (s,) in query(clean_pg, "SELECT DISTINCT source FROM test_executions")}
    assert sources == {"junit-results.zip!reports/api.xml", "junit-results.zip!reports/db.xml"}


def test_malformed_and_hostile_files_are_listed_and_the_others_stored(clean_pg: str, tmp_path: Path) -> None:
    folder = reports_folder(tmp_path, ("broken.xml", TRUNCATED), ("xxe.xml", XXE))
    hostile_zip = tmp_path / "more.zip"
    hostile_zip.write_bytes(zip_members({"ok.xml": db_report(), "../../etc/passwd.xml": db_report()}))
    result = flakeguard(
        pg_env(clean_pg, tmp_path), "ingest", *RUN_ARGS, "--json", str(folder), str(hostile_zip)
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["reports"], data["executionsNew"]) == (3, 12)
    refused = {(r["artifact"], r["member"], r["reason"]): r for r in data["refused"]}
    assert set(refused) == {
        ("test-results", "broken.xml", "malformed_xml"),
        ("test-results", "xxe.xml", "dtd_forbidden"),
        ("more.zip", "../../etc/passwd.xml", "unsafe_member_name"),
    }
    assert refused[("test-results", "broken.xml", "malformed_xml")]["line"] == 4
    assert refused[("test-results", "xxe.xml", "dtd_forbidden")]["line"] == 1
    assert query(clean_pg, "SELECT files_refused, executions_total FROM workflow_runs") == [(3, 12)]
    # The readable summary lists them too.
    text = flakeguard(pg_env(clean_pg, tmp_path), "ingest", *RUN_ARGS, str(folder), str(hostile_zip))
    assert text.returncode == 0
    assert "broken.xml" in text.stdout and "dtd_forbidden" in text.stdout and "0 new" in text.stdout


def test_when_every_file_is_refused_the_exit_code_is_1(clean_pg: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(TRUNCATED)
    not_zip = tmp_path / "fake.zip"
    not_zip.write_bytes(b"this is not a zip archive")
    result = flakeguard(pg_env(clean_pg, tmp_path), "ingest", *RUN_ARGS, "--json", str(bad), str(not_zip))
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["outcome"] == "all refused"
    assert sorted(r["reason"] for r in data["refused"]) == ["bad_zip", "malformed_xml"]
    assert query(clean_pg, "SELECT count(*) FROM test_executions") == [(0,)]


def test_nothing_to_store_is_not_an_error(clean_pg: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = flakeguard(pg_env(clean_pg, tmp_path), "ingest", *RUN_ARGS, "--json", str(tmp_path / "empty"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outcome"] == "no test reports"


@pytest.mark.parametrize(
    "args",
    [
        ["--repo", "not-a-repo", "--run-id", "1", "--sha", "a", "--branch", "main", "{folder}"],
        ["--repo", "acme/x", "--run-id", "0", "--sha", "a", "--branch", "main", "{folder}"],
        ["--repo", "acme/x", "--run-id", "1", "--branch", "main", "{folder}"],
        ["--repo", "acme/x", "--run-id", "1", "--sha", "a", "--branch", "main", "{folder}/missing"],
        ["--repo", "acme/x", "--run-id", "1", "--sha", "a", "--branch", "main", "--started-at", "yesterday",
         "{folder}"],
        ["--repo", "acme/x", "--run-id", "1", "--sha", "a", "--branch", "main"],
    ],
    ids=["repo", "run-id", "no-sha", "missing-path", "started-at", "no-path"],
)  # fmt: skip
def test_bad_arguments_exit_with_2(clean_pg: str, tmp_path: Path, args: list[str]) -> None:
    folder = reports_folder(tmp_path)
    result = flakeguard(pg_env(clean_pg, tmp_path), "ingest", *(a.format(folder=folder) for a in args))
    assert result.returncode == 2, result.stdout + result.stderr
    assert query(clean_pg, "SELECT count(*) FROM workflow_runs") == [(0,)]


def test_analyze_scores_the_run_in_process_without_redis(clean_pg: str, tmp_path: Path) -> None:
    env = pg_env(clean_pg, tmp_path)
    assert "REDIS_URL" not in env
    result = flakeguard(env, "ingest", *RUN_ARGS, "--analyze", "--json", str(reports_folder(tmp_path)))
    assert result.returncode == 0, result.stderr
    analysis = json.loads(result.stdout)["analysis"]
    assert analysis["tests"] == 7
    assert query(clean_pg, "SELECT count(*) FROM flakiness_results") == [(7,)]
    readable = flakeguard(env, "ingest", *RUN_ARGS, "--analyze", str(reports_folder(tmp_path / "again")))
    assert readable.returncode == 0, readable.stderr
    assert "analysis: tests 7" in readable.stdout


def test_the_embedded_sqlite_database_is_created_and_reingest_is_idempotent(tmp_path: Path) -> None:
    env = process_env({"FLAKEGUARD_DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "warn"})
    folder = reports_folder(tmp_path)
    first = flakeguard(env, "ingest", *RUN_ARGS, "--json", str(folder))
    assert first.returncode == 0, first.stderr
    second = flakeguard(env, "ingest", *RUN_ARGS, "--json", str(folder))
    assert second.returncode == 0, second.stderr
    assert [json.loads(r.stdout)["executionsNew"] for r in (first, second)] == [8, 0]
    assert (tmp_path / "data" / "flakeguard.db").exists()
