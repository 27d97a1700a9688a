"""The worker host on real Redis: error mapping, retries, timing, shutdown, idempotence."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
from bullmq import Queue
from sqlalchemy import func, select

from flakeguard.jobs.errors import TransientError
from flakeguard.jobs.names import QueueName
from flakeguard.jobs.payloads import RepositoryRef, RunMetadata, RunsIngestJob, parse_payload
from flakeguard.model import Outcome
from flakeguard.pipeline.ingest import ingest_run
from flakeguard.services import Services
from flakeguard.store.models import TestCase, TestExecution, WorkflowRun
from flakeguard.testing.fake_github import FakeGitHub
from flakeguard.testing.reports import CaseSpec, SuiteSpec, junit_xml, zip_members
from flakeguard.workers.context import Handler, JobContext
from flakeguard.workers.handlers import HANDLERS
from flakeguard.workers.host import WorkerHost

from .test_end_to_end import EXAMPLE_PAYLOAD, REPO, SOMETIMES, artifact_for

pytestmark = pytest.mark.integration


@asynccontextmanager
async def hosted(
    services: Services, handlers: Mapping[QueueName, Handler], queues: list[QueueName], concurrency: int = 2
) -> AsyncIterator[WorkerHost]:
    host = WorkerHost(services, handlers, queues, concurrency=concurrency)
    await host.start()
    try:
        yield host
    finally:
        await host.close()


async def wait_state(queue: Queue, job_id: str, states: set[str], within: float) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        state = str(await queue.getJobState(job_id))
        if state in states:
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {states} in {within} s (now {state})")


async def test_a_bad_payload_fails_at_once_without_retries_naming_the_field(services: Services) -> None:
    queue = services.producer.queue(QueueName.RUNS_INGEST)
    await queue.add(
        "ingest",
        {"workflowRunId": "abc", "repository": {"owner": "acme", "repo": "p"}},
        {"jobId": "bad-payload", "attempts": 3, "priority": 3},
    )
    async with hosted(services, HANDLERS, [QueueName.RUNS_INGEST]):
        assert await wait_state(queue, "bad-payload", {"failed", "completed"}, 15) == "failed"
    job = await queue.getJob("bad-payload")
    assert job.attemptsMade == 1
    assert "workflowRunId" in job.failedReason


async def test_transient_errors_are_retried_with_backoff_then_succeed(services: Services) -> None:
    calls: list[float] = []

    async def flaky(ctx: JobContext) -> dict[str, Any]:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise TransientError("GitHub hiccup")
        return {"ok": True}

    queue = services.producer.queue(QueueName.TESTS_RECOMPUTE)
    await queue.add(
        "x",
        {},
        {"jobId": "retry-me", "attempts": 3, "priority": 3, "backoff": {"type": "flakeguard", "delay": 200}},
    )
    async with hosted(services, {QueueName.TESTS_RECOMPUTE: flaky}, [QueueName.TESTS_RECOMPUTE]):
        assert await wait_state(queue, "retry-me", {"completed", "failed"}, 20) == "completed"
    assert len(calls) == 3
    # Equal jitter: each wait is between half and all of the capped exponential delay (200, then 400 ms).
    assert calls[1] - calls[0] >= 0.09 and calls[2] - calls[1] >= 0.19


async def test_a_job_that_keeps_failing_lands_in_the_failed_set_and_can_be_retried(
    services: Services,
) -> None:
    fail = True

    async def handler(ctx: JobContext) -> dict[str, Any]:
        if fail:
            raise RuntimeError("still broken")
        return {}

    queue = services.producer.queue(QueueName.TESTS_RECOMPUTE)
    await queue.add(
        "x",
        {},
        {
            "jobId": "dead-letter",
            "attempts": 2,
            "priority": 3,
            "backoff": {"type": "flakeguard", "delay": 50},
        },
    )
    async with hosted(services, {QueueName.TESTS_RECOMPUTE: handler}, [QueueName.TESTS_RECOMPUTE]):
        assert await wait_state(queue, "dead-letter", {"failed"}, 20) == "failed"
        fail = False
        await queue.retryJobs({"state": "failed"})
        assert await wait_state(queue, "dead-letter", {"completed"}, 20) == "completed"


@pytest.mark.slow
async def test_a_delayed_job_runs_on_an_idle_worker_on_time(services: Services) -> None:
    """Regression (BULLMQ-NOTES): redis-py 8's 5 s socket timeout made a 7 s delay run minutes late."""
    ran: list[float] = []

    async def handler(ctx: JobContext) -> dict[str, Any]:
        ran.append(time.monotonic())
        return {}

    queue = services.producer.queue(QueueName.TESTS_RECOMPUTE)
    async with hosted(services, {QueueName.TESTS_RECOMPUTE: handler}, [QueueName.TESTS_RECOMPUTE]):
        await asyncio.sleep(1)
        added = time.monotonic()
        await queue.add("x", {}, {"jobId": "delayed-7s", "delay": 7000, "priority": 3})
        await wait_state(queue, "delayed-7s", {"completed"}, 15)
    assert 6.5 <= ran[0] - added <= 8.5


@pytest.mark.slow
async def test_a_job_scheduler_fires_on_schedule_on_an_idle_worker(services: Services) -> None:
    fired: list[float] = []

    async def handler(ctx: JobContext) -> dict[str, Any]:
        fired.append(time.monotonic())
        return {}

    queue = services.producer.queue(QueueName.POLLING)
    async with hosted(services, {QueueName.POLLING: handler}, [QueueName.POLLING]):
        await queue.upsertJobScheduler("every-6s", {"every": 6000}, "tick", {}, {"priority": 4})
        await asyncio.sleep(20)
    # Fires at once and then every 6 s: 4 times in 20 s (the bug gave 1-2).
    assert len(fired) >= 4


async def test_shutdown_waits_for_jobs_in_flight(services: Services) -> None:
    finished: list[str] = []
    started = asyncio.Event()

    async def slow(ctx: JobContext) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(1.5)
        finished.append(str(ctx.job.id))
        return {}

    queue = services.producer.queue(QueueName.TESTS_RECOMPUTE)
    await queue.add("x", {}, {"jobId": "in-flight", "priority": 3})
    host = WorkerHost(services, {QueueName.TESTS_RECOMPUTE: slow}, [QueueName.TESTS_RECOMPUTE], concurrency=1)
    await host.start()
    await asyncio.wait_for(started.wait(), 10)
    await host.close()
    assert finished == ["in-flight"]
    assert str(await queue.getJobState("in-flight")) == "completed"


async def test_ingesting_the_same_run_twice_keeps_one_copy_of_each_execution(
    services: Services, fake_github: FakeGitHub
) -> None:
    fake_github.add_repository(*REPO, installation_id=67890)
    fake_github.add_run(
        *REPO,
        12345,
        head_sha="a" * 40,
        branch="main",
        artifacts={"test-results": artifact_for(Outcome.FAILED)},
    )
    job = parse_payload(RunsIngestJob, EXAMPLE_PAYLOAD)
    first = await ingest_run(services, job)
    second = await ingest_run(services, job)
    assert (first.executions, first.executions_new) == (3, 3)
    assert (second.executions, second.executions_new) == (3, 0)
    async with services.sessions() as session:
        assert (await session.execute(select(func.count(TestExecution.id)))).scalar_one() == 3
        assert (await session.execute(select(func.count(WorkflowRun.id)))).scalar_one() == 1


async def test_each_attempt_of_a_rerun_ingests_exactly_the_artifacts_it_made(
    services: Services, fake_github: FakeGitHub
) -> None:
    """GitHub lists a run's artifacts across all its attempts, under the same names, without saying
    which attempt made which. "Re-run failed jobs" makes attempt 2 upload the unit tests again but not
    the lint results of attempt 1: each attempt must get its own artifacts, and only those."""
    lint = zip_members({"lint.xml": junit_xml([SuiteSpec("lint", [CaseSpec("lint.Style", "test_style")])])})
    fake_github.add_repository(*REPO, installation_id=67890)
    fake_github.add_run(
        *REPO,
        7001,
        head_sha="f" * 40,
        artifacts={"test-results-unit": artifact_for(Outcome.FAILED), "test-results-lint": lint},
    )
    fake_github.add_run(
        *REPO,
        7001,
        head_sha="f" * 40,
        run_attempt=2,
        artifacts={"test-results-unit": artifact_for(Outcome.PASSED)},
    )
    ref = RepositoryRef(owner=REPO[0], repo=REPO[1], installation_id=67890)

    first = await ingest_run(
        services, RunsIngestJob(workflow_run_id=7001, repository=ref, metadata=RunMetadata(run_attempt=1))
    )
    second = await ingest_run(
        services, RunsIngestJob(workflow_run_id=7001, repository=ref, metadata=RunMetadata(run_attempt=2))
    )

    assert (first.run_attempt, first.artifacts, first.executions) == (1, 2, 4)
    assert (second.run_attempt, second.artifacts, second.executions) == (2, 1, 3)
    async with services.sessions() as session:
        rows = await session.execute(
            select(WorkflowRun.run_attempt, TestCase.name, TestExecution.outcome)
            .join(TestExecution, TestExecution.workflow_run_id == WorkflowRun.id)
            .join(TestCase, TestCase.id == TestExecution.test_case_id)
            .where(WorkflowRun.run_id == 7001)
        )
        outcomes = {(attempt, name): outcome for attempt, name, outcome in rows.all()}
    assert outcomes[(1, SOMETIMES)] == Outcome.FAILED and outcomes[(2, SOMETIMES)] == Outcome.PASSED
    assert (1, "test_style") in outcomes and (2, "test_style") not in outcomes
