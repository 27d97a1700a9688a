"""The walking skeleton, for real: fake GitHub -> Redis queues -> `flakeguard worker` -> PostgreSQL -> scores.

The history of `tests.test_api.ApiTest.test_sometimes`, newest first, is F P F P P over five runs;
the fourth-newest run is on branch `feature-x`, the others on `main`. Worked out by hand:

    failure rate      = 2 / 5                                   = 0.4
    inconsistency     = 3 changes / (5 - 1)                     = 0.75
    recency           = (1 + 0.6) / (1 + 0.8 + 0.6 + 0.4 + 0.2) = 0.5333...
    branch diversity  = 1 branch with a failure / 2 branches    = 0.5
    score = 0.4*0.4 + 0.3*0.75 + 0.2*0.5333 + 0.1*0.5           = 0.541666...
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from bullmq import Queue

from flakeguard.config import Settings
from flakeguard.jobs.connection import with_socket_timeout
from flakeguard.model import Outcome
from flakeguard.testing.fake_github import FakeGitHub
from flakeguard.testing.reports import CaseSpec, SuiteSpec, junit_xml, zip_members

from .helpers import ROOT, free_port, process_env, running_worker, wait_for

pytestmark = pytest.mark.integration

REPO = ("acme", "project")
HISTORY = [  # oldest first: (run id, branch, outcome of test_sometimes)
    (12341, "main", Outcome.PASSED),
    (12342, "feature-x", Outcome.PASSED),
    (12343, "main", Outcome.FAILED),
    (12344, "main", Outcome.PASSED),
    (12345, "main", Outcome.FAILED),
]
EXAMPLE_PAYLOAD = {
    "workflowRunId": 12345,
    "repository": {"owner": "acme", "repo": "project", "installationId": 67890},
    "priority": "high",
}
SOMETIMES = "test_sometimes"


def artifact_for(outcome: Outcome) -> bytes:
    api = SuiteSpec(
        "tests.test_api",
        [
            CaseSpec("tests.test_api.ApiTest", "test_ok", file="tests/test_api.py", line=10),
            CaseSpec("tests.test_api.ApiTest", SOMETIMES, outcome=outcome, file="tests/test_api.py", line=20),
        ],
    )
    db = SuiteSpec("tests.test_db", [CaseSpec("tests.test_db.DbTest", "test_query", time_s=0.2)])
    return zip_members({"junit/api.xml": junit_xml([api]), "junit/db.xml": junit_xml([db])})


def publish_history(gh: FakeGitHub) -> None:
    gh.add_repository(*REPO, installation_id=67890)
    start = datetime.now(UTC) - timedelta(days=2)
    for index, (run_id, branch, outcome) in enumerate(HISTORY):
        gh.add_run(
            *REPO,
            run_id,
            head_sha=f"{run_id:040x}",
            branch=branch,
            created_at=start + timedelta(hours=index),
            artifacts={"test-results": artifact_for(outcome)},
        )


def worker_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    assert settings.github_private_key is not None
    key = tmp_path / "app.pem"
    key.write_text(settings.github_private_key.get_secret_value())
    return process_env(
        {
            "DATABASE_URL": str(settings.database_url),
            "REDIS_URL": str(settings.redis_url),
            "REDIS_PREFIX": settings.redis_prefix,
            "GITHUB_API_URL": settings.github_api_url,
            "GITHUB_APP_ID": str(settings.github_app_id),
            "GITHUB_PRIVATE_KEY": str(key),
            "HEALTH_CHECK_PORT": str(free_port()),
            "METRICS_PORT": str(free_port()),
            "POLLING_ENABLED": "false",
            "LOG_LEVEL": "info",
            "FLAKEGUARD_DATA_DIR": str(tmp_path / "data"),
        }
    )


async def _add(settings: Settings, queue_name: str, data: dict[str, object], job_id: str) -> None:
    queue = Queue(
        queue_name,
        {"connection": with_socket_timeout(str(settings.redis_url)), "prefix": settings.redis_prefix},
    )
    try:
        await queue.add("ingest", data, {"jobId": job_id, "priority": 2, "attempts": 3})
    finally:
        await queue.close()


async def _job_state(settings: Settings, queue_name: str, job_id: str) -> str:
    queue = Queue(
        queue_name,
        {"connection": with_socket_timeout(str(settings.redis_url)), "prefix": settings.redis_prefix},
    )
    try:
        state = str(await queue.getJobState(job_id))
        if state == "failed":
            job = await queue.getJob(job_id)
            return f"failed: {job.failedReason if job else '?'}"
        return state
    finally:
        await queue.close()


def job_state(settings: Settings, queue_name: str, job_id: str) -> str:
    return asyncio.run(_job_state(settings, queue_name, job_id))


def db_rows(settings: Settings, sql: str, *args: object) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(str(settings.database_url))
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def assert_no_secrets_in(log: Path, settings: Settings) -> None:
    """The worker minted tokens (ghs_...) and signed JWTs with the App's key: none may be logged."""
    text = log.read_text()
    assert '"msg": "job_completed"' in text  # the log is the real one, in JSON
    assert settings.github_private_key is not None
    key_body = settings.github_private_key.get_secret_value().splitlines()[1]
    assert key_body not in text and "PRIVATE KEY" not in text
    assert "ghs_" not in text and "eyJ" not in text


def completed(settings: Settings, queue_name: str, job_id: str) -> bool:
    state = job_state(settings, queue_name, job_id)
    assert not state.startswith("failed"), f"{queue_name} job {job_id} {state}"
    return state == "completed"


def test_a_run_flows_from_github_through_the_queues_into_postgresql_and_scores(
    settings: Settings, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    publish_history(fake_github)
    env = worker_env(settings, tmp_path)
    with running_worker(env, tmp_path / "worker.log"):
        for run_id, _, _ in HISTORY[:-1]:
            payload = {**EXAMPLE_PAYLOAD, "workflowRunId": run_id}
            asyncio.run(_add(settings, "runs:ingest", payload, f"e2e-ingest-{run_id}"))
        for run_id, _, _ in HISTORY[:-1]:
            wait_for(
                lambda r=run_id: completed(settings, "runs:analyze", f"analyze-acme-project-{r}-1"),
                60,
                f"analysis of run {run_id}",
            )
        # The original's example payload, last, so that its analysis sees all five runs.
        asyncio.run(_add(settings, "runs:ingest", EXAMPLE_PAYLOAD, "e2e-ingest-example"))
        wait_for(lambda: completed(settings, "runs:ingest", "e2e-ingest-example"), 60, "the example job")
        wait_for(
            lambda: completed(settings, "runs:analyze", "analyze-acme-project-12345-1"),
            60,
            "analysis of run 12345",
        )

    assert_no_secrets_in(tmp_path / "worker.log", settings)

    runs = db_rows(
        settings, "SELECT run_id, branch, tests_total, executions_total FROM workflow_runs ORDER BY run_id"
    )
    assert [(r["run_id"], r["branch"]) for r in runs] == [(r, b) for r, b, _ in HISTORY]
    assert all(r["tests_total"] == 3 and r["executions_total"] == 3 for r in runs)
    executions = db_rows(settings, "SELECT count(*) AS n FROM test_executions")[0]["n"]
    assert executions == 15

    result = db_rows(
        settings,
        "SELECT f.* FROM flakiness_results f JOIN test_cases t ON t.id = f.test_case_id WHERE t.name = $1",
        SOMETIMES,
    )[0]
    assert result["executions"] == 5 and result["failures"] == 2
    assert result["failure_rate"] == pytest.approx(0.4)
    assert result["inconsistency"] == pytest.approx(0.75)
    assert result["recency"] == pytest.approx(1.6 / 3.0)
    assert result["branch_diversity"] == pytest.approx(0.5)
    assert result["score"] == pytest.approx(0.4 * 0.4 + 0.3 * 0.75 + 0.2 * (1.6 / 3.0) + 0.1 * 0.5)
    assert result["original_flaky"] is True

    steady = db_rows(
        settings,
        "SELECT f.score, f.failures FROM flakiness_results f JOIN test_cases t ON t.id = f.test_case_id"
        " WHERE t.name = 'test_ok'",
    )[0]
    assert steady["failures"] == 0 and steady["score"] == pytest.approx(0.0)


def test_a_job_enqueued_by_node_bullmq_is_processed_by_the_python_worker(
    settings: Settings, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    node = shutil.which("node")
    modules = ROOT / "tests" / "interop" / "node_modules" / "bullmq"
    if node is None:
        assert os.environ.get("CI") != "true", "CI must run the Node BullMQ interop test: install node"
        pytest.skip("node is not installed: the Node BullMQ interop test needs it")
    assert modules.exists(), "run `make node-deps` (npm ci in tests/interop) first"
    fake_github.add_repository(*REPO, installation_id=67890)
    fake_github.add_run(
        *REPO,
        777001,
        head_sha="f" * 40,
        branch="main",
        artifacts={"test-results": artifact_for(Outcome.FAILED)},
    )
    payload = {**EXAMPLE_PAYLOAD, "workflowRunId": 777001}
    with running_worker(worker_env(settings, tmp_path), tmp_path / "worker.log"):
        out = subprocess.run(
            [
                node,
                "enqueue.mjs",
                str(settings.redis_url),
                settings.redis_prefix,
                json.dumps(payload),
                "node-ingest-777001",
            ],
            cwd=ROOT / "tests" / "interop",
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert json.loads(out.stdout)["id"] == "node-ingest-777001"
        wait_for(lambda: completed(settings, "runs:ingest", "node-ingest-777001"), 60, "the Node job")
    stored = db_rows(
        settings,
        "SELECT count(*) AS n FROM test_executions e JOIN workflow_runs r"
        " ON r.id = e.workflow_run_id WHERE r.run_id = 777001",
    )[0]["n"]
    assert stored == 3
