"""GitHub's limits and faults through a real worker on real Redis, against the fake GitHub.

A rate limit (primary, secondary with or without retry-after) delays the job until GitHub's reset
without spending an attempt and holds the whole queue, so no other job calls GitHub meanwhile; the
reserve holds only low-priority work; an expired artifact completes the job; a truncated download is
fetched again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import pytest

from flakeguard.jobs.names import Priority, QueueName
from flakeguard.jobs.payloads import PollingJob, RepositoryRef, RunMetadata, RunsIngestJob
from flakeguard.model import Outcome
from flakeguard.services import Services
from flakeguard.testing.fake_github import FakeGitHub, Fault
from flakeguard.testing.openapi import check_fake_responses
from flakeguard.workers.context import Handler, JobContext
from flakeguard.workers.handlers import HANDLERS

from .test_end_to_end import REPO, artifact_for
from .test_worker import hosted, wait_state

pytestmark = pytest.mark.integration

INSTALLATION = 67890
RUN_ENDPOINT = "/repos/{owner}/{repo}/actions/runs/{run_id}"


def publish_runs(gh: FakeGitHub, *run_ids: int) -> dict[int, list[int]]:
    gh.add_repository(*REPO, installation_id=INSTALLATION)
    return {
        run_id: gh.add_run(
            *REPO,
            run_id,
            head_sha=f"{run_id:040x}",
            branch="main",
            artifacts={"test-results": artifact_for(Outcome.FAILED)},
        )
        for run_id in run_ids
    }


def ingest_job(run_id: int, priority: Priority = Priority.HIGH) -> RunsIngestJob:
    return RunsIngestJob(
        workflow_run_id=run_id,
        repository=RepositoryRef(owner=REPO[0], repo=REPO[1], installation_id=INSTALLATION),
        priority=priority,
        metadata=RunMetadata(run_attempt=1, triggered_by="webhook"),
    )


def recording(started: list[tuple[str, float]]) -> Mapping[QueueName, Handler]:
    """The real handlers, noting when each job starts (to prove the queue itself was held)."""

    def wrap(handler: Handler) -> Handler:
        async def run(ctx: JobContext) -> dict[str, Any]:
            started.append((str(ctx.job.id), time.time()))
            return await handler(ctx)

        return run

    return {name: wrap(handler) for name, handler in HANDLERS.items()}


async def wait_for(predicate: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def limited_at(gh: FakeGitHub) -> float:
    """When the fake answered the rate limit (the arrival of the request it refused)."""
    refused = [r for r in gh.responses if r.status in (403, 429)]
    assert len(refused) == 1, [r.status for r in gh.responses]
    matching = [q for q in gh.requests if q.path == refused[0].path and q.method == refused[0].method]
    return matching[0].at


@pytest.mark.parametrize(
    ("fault", "wait_s"),
    [
        pytest.param(Fault.primary_limit(status=403, reset_in=3), 3.0, id="primary-403"),
        pytest.param(Fault.primary_limit(status=429, reset_in=3), 3.0, id="primary-429"),
        pytest.param(Fault.secondary_limit(status=403, retry_after=3), 3.0, id="secondary-retry-after"),
    ],
)
async def test_a_rate_limit_delays_the_job_to_the_reset_and_holds_the_queue(
    services: Services, fake_github: FakeGitHub, fault: Fault, wait_s: float
) -> None:
    publish_runs(fake_github, 12345, 12346)
    queue = services.producer.queue(QueueName.RUNS_INGEST)
    fake_github.inject(RUN_ENDPOINT, fault, times=1)
    first = await services.producer.ingest(ingest_job(12345))
    second = await services.producer.ingest(ingest_job(12346))
    started: list[tuple[str, float]] = []
    async with hosted(services, recording(started), [QueueName.RUNS_INGEST], concurrency=1):
        assert await wait_state(queue, str(first.id), {"delayed"}, 10) == "delayed"
        at = limited_at(fake_github)
        delayed = await queue.getJob(str(first.id))
        # delayed to GitHub's reset, and no attempt spent
        assert delayed.attemptsMade == 0
        resume = (delayed.timestamp + delayed.delay) / 1000
        assert at + wait_s - 1.5 <= resume <= at + wait_s + 1.5, resume - at
        # the whole queue is held: the limiter key lives until the reset
        limiter_ms = await queue.client.pttl(queue.keys["limiter"])
        assert 0 < limiter_ms <= wait_s * 1000 + 1500
        assert str(await queue.getJobState(str(second.id))) in {"waiting", "prioritized"}
        assert await wait_state(queue, str(first.id), {"completed"}, wait_s + 10) == "completed"
        assert await wait_state(queue, str(second.id), {"completed"}, 10) == "completed"
    # Nothing called GitHub until the reset, and no other job even started.
    api_calls = [r.at for r in fake_github.requests if r.server == "api" and r.at > at]
    assert api_calls and min(api_calls) >= resume - 0.25, (min(api_calls) - at, resume - at)
    after = [t for job_id, t in started if t > at]
    assert after and min(after) >= resume - 0.25
    assert [job_id for job_id, t in started if t <= at] == [str(first.id)]
    done = await queue.getJob(str(first.id))
    assert done.attemptsMade == 1 and done.returnvalue["executions"] == 3
    check_fake_responses(fake_github)


async def test_a_secondary_limit_without_retry_after_waits_at_least_a_minute(
    services: Services, fake_github: FakeGitHub
) -> None:
    publish_runs(fake_github, 12345, 12346)
    queue = services.producer.queue(QueueName.RUNS_INGEST)
    fake_github.inject(RUN_ENDPOINT, Fault.secondary_limit(retry_after=None), times=1)
    first = await services.producer.ingest(ingest_job(12345))
    second = await services.producer.ingest(ingest_job(12346))
    started: list[tuple[str, float]] = []
    async with hosted(services, recording(started), [QueueName.RUNS_INGEST], concurrency=1):
        assert await wait_state(queue, str(first.id), {"delayed"}, 10) == "delayed"
        at = limited_at(fake_github)
        delayed = await queue.getJob(str(first.id))
        assert delayed.attemptsMade == 0
        resume = (delayed.timestamp + delayed.delay) / 1000
        assert at + 58 <= resume <= at + 62
        assert 55_000 <= await queue.client.pttl(queue.keys["limiter"]) <= 61_000
        await asyncio.sleep(2.5)  # the worker polls the limiter every drainDelay (1 s)
        assert [job_id for job_id, _ in started] == [str(first.id)]
        assert str(await queue.getJobState(str(second.id))) in {"waiting", "prioritized"}
        assert not [r for r in fake_github.requests if r.at > at + 0.01]


async def test_the_reserve_holds_low_priority_work_while_high_priority_work_goes_on(
    services: Services, fake_github: FakeGitHub
) -> None:
    publish_runs(fake_github, 12345, 12346)
    ingest = services.producer.queue(QueueName.RUNS_INGEST)
    polling = services.producer.queue(QueueName.POLLING)
    reserve = services.settings.github_rate_limit_reserve
    # The installation's budget is under the reserve until a reset 4 s away; the worker learns it
    # from the headers of its first response.
    fake_github.set_rate_limit_remaining(reserve // 2, reset_in=4)
    assert services.github.app is not None
    client = services.github.app.installation_client(INSTALLATION)
    await client.get_workflow_run(*REPO, 12345)
    assert client.rate_limit is not None and client.rate_limit.remaining < reserve
    reset_at = client.rate_limit.reset_at.timestamp()
    seen = len(fake_github.requests)

    low = await services.producer.ingest(ingest_job(12346, Priority.LOW))
    poll = await services.producer.poll(
        PollingJob(type="poll_repository", repository=ingest_job(1).repository), job_id="poll-low"
    )
    high = await services.producer.ingest(ingest_job(12345, Priority.HIGH))
    async with hosted(services, HANDLERS, [QueueName.RUNS_INGEST, QueueName.POLLING], concurrency=1):
        assert await wait_state(ingest, str(high.id), {"completed"}, 10) == "completed"
        assert await wait_state(ingest, str(low.id), {"delayed"}, 10) == "delayed"
        assert await wait_state(polling, str(poll.id), {"delayed"}, 10) == "delayed"
        for queue, job_id in ((ingest, low.id), (polling, poll.id)):
            job = await queue.getJob(str(job_id))
            assert job.attemptsMade == 0
            assert abs((job.timestamp + job.delay) / 1000 - reset_at) <= 1.5
        # only the job waits: the queues are not rate-limited (the limiter key holds bullmq's own
        # per-second counter, not Queue.rateLimit's 2**53-1)
        for queue in (ingest, polling):
            assert int(await queue.client.get(queue.keys["limiter"]) or 0) < 10_000
        before_reset = [r for r in fake_github.requests[seen:] if r.at < reset_at]
        assert before_reset, "the high-priority job called GitHub"
        assert not [r for r in before_reset if "12346" in r.path or r.path.endswith("/actions/runs")]
        # after the reset GitHub's budget is full again and the low-priority work runs
        assert await wait_state(ingest, str(low.id), {"completed"}, 15) == "completed"
        assert await wait_state(polling, str(poll.id), {"completed"}, 10) == "completed"


async def test_an_expired_artifact_completes_the_job_without_retry(
    services: Services, fake_github: FakeGitHub
) -> None:
    publish_runs(fake_github, 12345)
    queue = services.producer.queue(QueueName.RUNS_INGEST)
    fake_github.inject("/repos/*/actions/artifacts/*/zip", "expired_artifact", times=-1)
    job = await services.producer.ingest(ingest_job(12345))
    async with hosted(services, HANDLERS, [QueueName.RUNS_INGEST]):
        assert await wait_state(queue, str(job.id), {"completed", "failed"}, 10) == "completed"
    done = await queue.getJob(str(job.id))
    assert done.attemptsMade == 1
    assert done.returnvalue["outcome"] == "artifact expired"
    assert done.returnvalue["artifactsExpired"] == 1 and done.returnvalue["analyzeJobId"] is None
    downloads = fake_github.requests_to("/repos/*/actions/artifacts/*/zip")
    assert len(downloads) == 1  # a 410 is not retried


async def test_a_truncated_download_is_fetched_again(services: Services, fake_github: FakeGitHub) -> None:
    publish_runs(fake_github, 12345)
    queue = services.producer.queue(QueueName.RUNS_INGEST)
    fake_github.inject("/repos/*/actions/artifacts/*/zip", Fault.truncated_zip(keep=0.6), times=1)
    job = await services.producer.ingest(ingest_job(12345))
    async with hosted(services, HANDLERS, [QueueName.RUNS_INGEST]):
        assert await wait_state(queue, str(job.id), {"completed", "failed"}, 15) == "completed"
    done = await queue.getJob(str(job.id))
    assert done.attemptsMade == 1
    assert done.returnvalue["outcome"] == "ingested" and done.returnvalue["executions"] == 3
    assert done.returnvalue["refused"] == []
    blobs = [r for r in fake_github.requests if r.server == "blob"]
    assert len(blobs) == 2  # the cut copy, then a fresh signed URL
