"""The `FlakeGuard` check run after analysis, through a real `runs:analyze` worker and the fake GitHub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from flakeguard.github.checks import SUMMARY_LIMIT
from flakeguard.jobs.names import Priority, QueueName
from flakeguard.jobs.payloads import RepositoryRef, RunMetadata, RunsAnalyzeJob, RunsIngestJob
from flakeguard.model import Outcome
from flakeguard.pipeline.analyze import analyze_run
from flakeguard.pipeline.checks import (
    QUARANTINE_JOB_NAME,
    QuarantineActionJob,
    find_run,
    parse_external_id,
    publish_run_check,
)
from flakeguard.pipeline.ingest import ingest_run
from flakeguard.pipeline.quarantine import quarantine_tests
from flakeguard.services import Services
from flakeguard.store.models import CheckRunRecord, FlakinessResult, TestCase
from flakeguard.store.repository import get_repository
from flakeguard.testing.fake_github import FakeGitHub
from flakeguard.testing.openapi import check_fake_responses
from flakeguard.testing.reports import CaseSpec, SuiteSpec, junit_xml, zip_members
from flakeguard.workers.handlers import HANDLERS

from ..conftest import make_settings
from .test_worker import hosted, wait_state

pytestmark = pytest.mark.integration

OWNER, REPO, INSTALLATION = "acme", "project", 67890
REF = RepositoryRef(owner=OWNER, repo=REPO, installation_id=INSTALLATION)


def artifact(failing: int, passing: int = 2, *, long: bool = False) -> bytes:
    cases = [
        CaseSpec("pkg.test_ok.OkTest", f"test_ok_{i}", file="tests/test_ok.py", line=5 + i)
        for i in range(passing)
    ]
    for i in range(failing):
        name = f"test_broken_{i:03d}" + ("_with_a_rather_long_parametrised_id" * 5 if long else "")
        message = (f"assert {i} == {i + 1} " + "x" * 400) if long else f"assert {i} == {i + 1}"
        cases.append(
            CaseSpec(
                "pkg.test_broken.BrokenTest",
                name,
                outcome=Outcome.FAILED,
                file="tests/test_broken.py",
                line=10 + i,
                message=message,
            )
        )
    cases.append(CaseSpec("pkg.test_skip.SkipTest", "test_skipped", outcome=Outcome.SKIPPED))
    return zip_members({"junit.xml": junit_xml([SuiteSpec("pkg", cases)])})


async def ingest_and_analyze(
    services: Services, gh: FakeGitHub, run_id: int, data: bytes, sha: str
) -> dict[str, Any]:
    gh.add_repository(OWNER, REPO, installation_id=INSTALLATION)
    gh.add_run(OWNER, REPO, run_id, head_sha=sha, branch="main", artifacts={"test-results": data})
    job = RunsIngestJob(
        workflow_run_id=run_id, repository=REF, priority=Priority.HIGH, metadata=RunMetadata(run_attempt=1)
    )
    result = await ingest_run(services, job)
    assert result.analyze_job_id is not None
    return await finish(services, result.analyze_job_id)


async def finish(services: Services, job_id: str) -> dict[str, Any]:
    queue = services.producer.queue(QueueName.RUNS_ANALYZE)
    async with hosted(services, HANDLERS, [QueueName.RUNS_ANALYZE]):
        state = await wait_state(queue, job_id, {"completed", "failed"}, 15)
    job = await queue.getJob(job_id)
    assert state == "completed", job.failedReason
    return dict(job.returnvalue)


async def reanalyze(services: Services, run_id: int, job_id: str) -> dict[str, Any]:
    job = await services.producer.analyze(
        # Forced: a run analysed since its last ingest is otherwise not analysed (nor published) again.
        RunsAnalyzeJob(
            workflow_run_id=run_id,
            repository=REF,
            run_attempt=1,
            priority=Priority.HIGH,
            force_recompute=True,
        ),
        job_id=job_id,
    )
    return await finish(services, str(job.id))


async def stored_check_runs(services: Services) -> list[tuple[str, int]]:
    async with services.sessions() as session:
        rows = await session.execute(select(CheckRunRecord.head_sha, CheckRunRecord.check_run_id))
        return [(str(a), int(b)) for a, b in rows.all()]


async def test_120_failures_make_three_requests_with_a_truncated_summary(
    services: Services, fake_github: FakeGitHub
) -> None:
    sha = "a" * 40
    result = await ingest_and_analyze(services, fake_github, 12345, artifact(120, long=True), sha)
    check = result["checkRun"]
    assert check["status"] == "created" and check["conclusion"] == "failure"
    # One look-up (is there a FlakeGuard check run on this sha already?), then three writes.
    assert check["annotations"] == 120 and check["requests"] == 4
    calls = fake_github.requests_to("/repos/acme/project/*check-runs*")
    assert [c.method for c in calls] == ["GET", "POST", "PATCH", "PATCH"]
    assert calls[0].path == f"/repos/acme/project/commits/{sha}/check-runs"
    [run] = fake_github.check_runs
    assert [len((body.get("output") or {}).get("annotations", [])) for body in run.requests] == [50, 50, 20]
    assert run.name == "FlakeGuard" and run.head_sha == sha and run.conclusion == "failure"
    assert parse_external_id(run.external_id) is not None
    assert parse_external_id(run.external_id).run_id == 12345  # type: ignore[union-attr]
    summary = run.output["summary"]
    assert len(summary) <= SUMMARY_LIMIT
    assert "Summary truncated" in summary and "failing tests not shown" in summary
    assert (
        "**Totals:** 123 tests, 2 passed, 120 failed (120 new, 0 known flaky or quarantined), 1 skipped."
        in summary
    )
    first = run.annotations[0]
    assert first["path"] == "tests/test_broken.py" and first["annotation_level"] == "failure"
    assert {a["start_line"] for a in run.annotations} == set(range(10, 130))
    assert [a["identifier"] for a in run.actions] == ["reanalyze"]
    assert await stored_check_runs(services) == [(sha, run.id)]
    check_fake_responses(fake_github)


async def test_conclusions_and_reanalysis_update_the_same_check_run(
    services: Services, fake_github: FakeGitHub
) -> None:
    green, red = "b" * 40, "c" * 40
    ok = await ingest_and_analyze(services, fake_github, 2001, artifact(0), green)
    assert ok["checkRun"]["conclusion"] == "success"
    bad = await ingest_and_analyze(services, fake_github, 2002, artifact(2), red)
    assert bad["checkRun"]["conclusion"] == "failure"
    red_run = next(r for r in fake_github.check_runs if r.head_sha == red)
    assert len(red_run.annotations) == 2

    # Every failing test is now quarantined: re-analysis updates the same check run to neutral,
    # without annotating the same tests twice.
    async with services.sessions.begin() as session:
        ids = list(
            (await session.execute(select(TestCase.id).where(TestCase.name.like("test_broken_%")))).scalars()
        )
        repository_id = (await session.execute(select(TestCase.repository_id).limit(1))).scalar_one()
        assert await quarantine_tests(session, repository_id, ids, reason="flaky", actor="octocat") == 2
    again = await reanalyze(services, 2002, "reanalyze-acme-project-2002-1-test")
    assert again["checkRun"]["status"] == "updated" and again["checkRun"]["id"] == red_run.id
    assert again["checkRun"]["conclusion"] == "neutral"
    assert len(fake_github.check_runs) == 2
    red_run = next(r for r in fake_github.check_runs if r.head_sha == red)
    assert red_run.conclusion == "neutral" and len(red_run.annotations) == 2
    assert "🔒 quarantined" in red_run.output["summary"]
    assert "Quarantined tests (2)" in red_run.output["summary"]
    assert sorted(await stored_check_runs(services)) == sorted(
        [(green, ok["checkRun"]["id"]), (red, red_run.id)]
    )
    check_fake_responses(fake_github)


async def test_the_quarantine_button_quarantines_known_flaky_failures(
    services: Services, fake_github: FakeGitHub
) -> None:
    sha = "d" * 40
    await ingest_and_analyze(services, fake_github, 3001, artifact(2), sha)
    async with services.sessions.begin() as session:
        flaky_id = (
            await session.execute(select(TestCase.id).where(TestCase.name == "test_broken_000"))
        ).scalar_one()
        await session.execute(
            update(FlakinessResult)
            .where(FlakinessResult.test_case_id == flaky_id)
            .values(
                status="flaky", score=0.54, confidence=0.93, evidence={"reason": "passed on retry in 3 runs"}
            )
        )
    action = QuarantineActionJob(repository=REF, workflow_run_id=3001, run_attempt=1, actor="octocat")
    queue = services.producer.queue(QueueName.RUNS_ANALYZE)
    job = await queue.add(QUARANTINE_JOB_NAME, action.to_wire(), {"jobId": "quarantine-test", "priority": 2})
    result = await finish(services, str(job.id))
    assert result["quarantined"] == 1
    assert result["checkRun"]["status"] == "updated"
    [run] = fake_github.check_runs
    summary = run.output["summary"]
    assert "🔒 quarantined" in summary and "❌ new failure" in summary  # test_broken_001 stays new
    assert run.conclusion == "failure"


async def test_known_flaky_failures_alone_are_neutral_with_a_quarantine_button(
    services: Services, fake_github: FakeGitHub
) -> None:
    sha = "e" * 40
    await ingest_and_analyze(services, fake_github, 4001, artifact(1), sha)
    async with services.sessions.begin() as session:
        await session.execute(
            update(FlakinessResult)
            .where(
                FlakinessResult.test_case_id.in_(
                    select(TestCase.id).where(TestCase.name == "test_broken_000")
                )
            )
            .values(status="flaky", score=0.61, confidence=0.9, evidence={"reason": "fails on 3 branches"})
        )
    # publish again without re-scoring (re-scoring would recompute the verdict from the short history)
    async with services.sessions() as session:
        repository = await get_repository(session, OWNER, REPO)
        assert repository is not None
        run = await find_run(session, repository.id, 4001, 1)
        assert run is not None
    check = await publish_run_check(services, repository, run)
    assert check["conclusion"] == "neutral" and check["status"] == "updated"
    [record] = fake_github.check_runs
    assert "🔁 known flaky" in record.output["summary"] and "0.61" in record.output["summary"]
    assert "fails on 3 branches" in record.output["summary"]
    assert [a["identifier"] for a in record.actions] == ["quarantine", "reanalyze"]


async def test_without_github_credentials_publishing_is_skipped(
    services: Services, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    fake_github.add_repository(OWNER, REPO, installation_id=INSTALLATION)
    fake_github.add_run(OWNER, REPO, 5001, head_sha="f" * 40, artifacts={"test-results": artifact(1)})
    ingested = await ingest_run(services, RunsIngestJob(workflow_run_id=5001, repository=REF))
    s = services.settings
    bare = Services.create(
        make_settings(
            DATABASE_URL=s.database_url,
            REDIS_URL=s.redis_url,
            REDIS_PREFIX=s.redis_prefix,
            FLAKEGUARD_DATA_DIR=str(tmp_path / "bare"),
        )
    )
    try:
        assert not bare.github.configured
        result = await finish(bare, str(ingested.analyze_job_id))
    finally:
        await bare.close()
    assert result["checkRun"] == {"status": "skipped", "reason": "no GitHub credentials"}
    assert fake_github.check_runs == []


async def test_an_analysis_stored_by_an_earlier_attempt_is_still_published(
    services: Services, fake_github: FakeGitHub
) -> None:
    """A `runs:analyze` attempt that stored its analysis and then lost its check-run write is retried:
    the retry skips the analysis (not forced) but must publish; once published, a duplicate job does
    neither again."""
    sha = "d" * 40
    fake_github.add_repository(OWNER, REPO, installation_id=INSTALLATION)
    fake_github.add_run(
        OWNER, REPO, 3001, head_sha=sha, branch="main", artifacts={"test-results": artifact(1)}
    )
    ingest = RunsIngestJob(
        workflow_run_id=3001, repository=REF, priority=Priority.HIGH, metadata=RunMetadata(run_attempt=1)
    )
    ingested = await ingest_run(services, ingest)
    assert ingested.analyze_job_id is not None
    # The earlier attempt: analysis stored, nothing published.
    analyze = RunsAnalyzeJob(workflow_run_id=3001, repository=REF, run_attempt=1, priority=Priority.HIGH)
    assert not (await analyze_run(services, analyze)).skipped
    assert fake_github.check_runs == []

    retried = await finish(services, ingested.analyze_job_id)
    assert "skipped" in retried and retried["checkRun"]["status"] == "created"
    assert [run.head_sha for run in fake_github.check_runs] == [sha]

    duplicate = await services.producer.analyze(analyze, job_id="analyze-acme-project-3001-1-again")
    again = await finish(services, str(duplicate.id))
    assert "skipped" in again and "checkRun" not in again
    assert len(fake_github.check_runs) == 1
