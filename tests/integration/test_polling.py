"""Polling against the fake GitHub: repository discovery, new runs enqueued once, cursor, ETag 304s."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from flakeguard.jobs.names import QueueName
from flakeguard.jobs.payloads import PollingJob, RepositoryRef
from flakeguard.pipeline.polling import OVERLAP, discover_repositories, poll_repository, window_start
from flakeguard.services import Services
from flakeguard.store.models import PollingCursor, Repository
from flakeguard.store.repository import RunInfo, record_run, upsert_repository
from flakeguard.testing.fake_github import FakeGitHub
from flakeguard.testing.openapi import check_fake_responses
from flakeguard.workers.handlers import HANDLERS

from .test_worker import hosted, wait_state

pytestmark = pytest.mark.integration

OWNER, REPO, INSTALLATION = "acme", "project", 67890
REF = RepositoryRef(owner=OWNER, repo=REPO, installation_id=INSTALLATION)
RUNS_TEMPLATE = "/repos/{owner}/{repo}/actions/runs"


def runs_statuses(gh: FakeGitHub) -> list[int]:
    return [r.status for r in gh.responses if r.template == RUNS_TEMPLATE]


async def queued_ids(services: Services, name: QueueName) -> set[str]:
    jobs = await services.producer.queue(name).getJobs(["waiting", "prioritized", "delayed"])
    return {str(j.id) for j in jobs}


async def store(services: Services, run_id: int, attempt: int = 1) -> None:
    async with services.sessions.begin() as session:
        repo = await upsert_repository(session, OWNER, REPO, installation_id=INSTALLATION)
        info = RunInfo(
            run_id=run_id,
            run_attempt=attempt,
            head_sha=f"{run_id:040x}",
            branch="main",
            event="push",
            conclusion="failure",
            started_at=datetime.now(UTC),
        )
        await record_run(session, repo.id, info)


async def cursor(services: Services) -> PollingCursor | None:
    async with services.sessions() as session:
        repo_id = (await session.execute(select(Repository.id).where(Repository.name == REPO))).scalar_one()
        return await session.get(PollingCursor, repo_id)


async def test_discovery_upserts_every_installed_repository(
    services: Services, fake_github: FakeGitHub
) -> None:
    fake_github.add_repository(OWNER, REPO, installation_id=INSTALLATION, default_branch="main")
    fake_github.add_repository(OWNER, "other", installation_id=INSTALLATION, default_branch="develop")
    fake_github.add_repository("beta", "tool", installation_id=11111)
    assert await discover_repositories(services) == 3
    async with services.sessions() as session:
        rows = (await session.execute(select(Repository))).scalars().all()
        found = {r.full_name: (r.installation_id, r.default_branch, r.active) for r in rows}
    assert found == {
        "acme/project": (INSTALLATION, "main", True),
        "acme/other": (INSTALLATION, "develop", True),
        "beta/tool": (11111, "main", True),
    }
    check_fake_responses(fake_github)


async def test_poll_enqueues_new_completed_runs_once_and_then_costs_a_304(
    services: Services, fake_github: FakeGitHub
) -> None:
    now = datetime.now(UTC)
    fake_github.add_repository(OWNER, REPO, installation_id=INSTALLATION)
    for index, run_id in enumerate((101, 102, 103)):
        fake_github.add_run(
            OWNER, REPO, run_id, head_sha=f"{run_id:040x}", created_at=now - timedelta(hours=5 - index)
        )
    fake_github.add_run(
        OWNER,
        REPO,
        104,
        head_sha="d" * 40,
        status="in_progress",
        conclusion=None,
        created_at=now - timedelta(hours=1),
    )
    fake_github.add_run(OWNER, REPO, 99, head_sha="e" * 40, created_at=now - timedelta(days=10))  # too old
    await store(services, 101)
    job = PollingJob(type="poll_repository", repository=REF)

    first = await poll_repository(services, job)
    assert first == {
        "repository": "acme/project",
        "runs": 3,
        "enqueued": 2,
        "alreadyStored": 1,
        "alreadyQueued": 0,
        "followUp": False,
    }
    assert await queued_ids(services, QueueName.RUNS_INGEST) == {
        "ingest-acme-project-102-1",
        "ingest-acme-project-103-1",
    }
    ingest = await services.producer.queue(QueueName.RUNS_INGEST).getJob("ingest-acme-project-103-1")
    assert ingest.opts["priority"] == 4  # low: polling never crowds out webhooks
    assert ingest.data["metadata"]["triggeredBy"] == "polling"
    assert ingest.data["metadata"]["headSha"] == f"{103:040x}"
    state = await cursor(services)
    assert state is not None and state.last_run_created_at is not None
    assert abs((state.last_run_created_at - (now - timedelta(hours=3))).total_seconds()) < 2
    [listing] = fake_github.requests_to("/repos/acme/project/actions/runs")
    assert "status=completed" in listing.query and "created=%3E%3D" in listing.query

    # The worker ingested them; nothing changed on GitHub: a 304, nothing enqueued.
    await store(services, 102)
    await store(services, 103)
    for job_id in ("ingest-acme-project-102-1", "ingest-acme-project-103-1"):
        await services.producer.queue(QueueName.RUNS_INGEST).remove(job_id)
    second = await poll_repository(services, job)
    assert second["enqueued"] == 0 and second["alreadyStored"] == 3
    assert runs_statuses(fake_github) == [200, 304]
    assert await queued_ids(services, QueueName.RUNS_INGEST) == set()

    # A new run and a re-run of an old one (same created_at, attempt 2) show up on the next poll.
    fake_github.add_run(OWNER, REPO, 105, head_sha="f" * 40, created_at=now - timedelta(minutes=30))
    fake_github.add_run(OWNER, REPO, 101, head_sha=f"{101:040x}", run_attempt=2)
    third = await poll_repository(services, job)
    assert third["enqueued"] == 2
    assert runs_statuses(fake_github) == [200, 304, 200]
    assert await queued_ids(services, QueueName.RUNS_INGEST) == {
        "ingest-acme-project-105-1",
        "ingest-acme-project-101-2",
    }
    state = await cursor(services)
    assert state is not None and state.last_run_created_at is not None
    assert abs((state.last_run_created_at - (now - timedelta(minutes=30))).total_seconds()) < 2
    check_fake_responses(fake_github)


def test_the_window_is_stable_between_polls_and_reaches_back_after_an_outage() -> None:
    now = datetime(2026, 3, 4, 10, 17, 45, tzinfo=UTC)
    later = now + timedelta(minutes=15)
    recent = now - timedelta(hours=1)
    assert (
        window_start(now, None, 72) == window_start(later, recent, 72) == datetime(2026, 3, 1, 10, tzinfo=UTC)
    )
    long_ago = now - timedelta(days=10)
    assert window_start(now, long_ago, 72) == (long_ago - OVERLAP).replace(minute=0, second=0, microsecond=0)


async def test_poll_all_through_the_worker_discovers_and_polls_each_repository(
    services: Services, fake_github: FakeGitHub
) -> None:
    now = datetime.now(UTC)
    fake_github.add_repository(OWNER, REPO, installation_id=INSTALLATION)
    fake_github.add_repository(OWNER, "other", installation_id=INSTALLATION)
    fake_github.add_run(OWNER, REPO, 201, head_sha="1" * 40, created_at=now - timedelta(hours=2))
    fake_github.add_run(OWNER, "other", 301, head_sha="2" * 40, created_at=now - timedelta(hours=2))
    polling = services.producer.queue(QueueName.POLLING)
    await services.producer.poll(PollingJob(type="poll_all"), job_id="poll-all-test")
    async with hosted(services, HANDLERS, [QueueName.POLLING]):
        assert await wait_state(polling, "poll-all-test", {"completed"}, 10) == "completed"
        deadline = 50
        while len(await queued_ids(services, QueueName.RUNS_INGEST)) < 2 and deadline:
            deadline -= 1
            await asyncio.sleep(0.1)
    assert await queued_ids(services, QueueName.RUNS_INGEST) == {
        "ingest-acme-project-201-1",
        "ingest-acme-other-301-1",
    }
    done = await polling.getJob("poll-all-test")
    assert done.returnvalue == {"discovered": 2, "repositories": 2}


async def test_a_backlog_drains_in_follow_up_polls_without_enqueuing_twice(
    services: Services, fake_github: FakeGitHub
) -> None:
    now = datetime.now(UTC)
    for run_id in range(201, 206):
        created = now - timedelta(hours=run_id - 200)
        fake_github.add_run(OWNER, REPO, run_id, head_sha=f"{run_id:040x}", created_at=created)
    job = PollingJob(type="poll_repository", repository=REF, batch_size=2)
    polling = services.producer.queue(QueueName.POLLING)

    first = await poll_repository(services, job)
    assert (first["enqueued"], first["alreadyQueued"], first["followUp"]) == (2, 0, True)
    follow_ups = await polling.getJobs(["delayed"])
    assert len(follow_ups) == 1 and follow_ups[0].data["type"] == "poll_repository"
    state = await cursor(services)
    assert state is None or state.last_run_created_at is None  # the cursor waits for the whole backlog

    # The follow-up poll skips the two still queued and takes the next two, then the last one.
    second = await poll_repository(services, job)
    assert (second["enqueued"], second["alreadyQueued"], second["followUp"]) == (2, 2, True)
    third = await poll_repository(services, job)
    assert (third["enqueued"], third["alreadyQueued"], third["followUp"]) == (1, 4, False)
    queued = await services.producer.queue(QueueName.RUNS_INGEST).getJobs(["prioritized", "waiting"])
    assert sorted(j.data["workflowRunId"] for j in queued) == [201, 202, 203, 204, 205]


async def test_after_an_outage_a_window_over_githubs_1000_runs_is_listed_whole_and_the_cursor_waits(
    services: Services, fake_github: FakeGitHub
) -> None:
    """GitHub lists the newest 1,000 runs of a filtered search only. After a six-day outage the window
    holds 1,030: the poll lists the older 30 as well (`created=since..oldest`), and the cursor does not
    move past runs it has not seen (before, it jumped to the newest run and those 30 were never polled)."""
    now = datetime.now(UTC).replace(microsecond=0)
    outage_began = now - timedelta(days=6)
    async with services.sessions.begin() as session:
        repo = await upsert_repository(session, OWNER, REPO, installation_id=INSTALLATION)
        session.add(PollingCursor(repository_id=repo.id, last_run_created_at=outage_began))
    fake_github.add_repository(OWNER, REPO, installation_id=INSTALLATION)
    during_outage = range(1, 31)  # five days ago: outside the 72-hour lookback, inside the outage
    for run_id in during_outage:
        fake_github.add_run(
            OWNER, REPO, run_id, head_sha="a" * 40, created_at=now - timedelta(days=5, minutes=run_id)
        )
    recent = range(1001, 2001)  # the newest 1,000, the last 33 hours
    for run_id in recent:
        fake_github.add_run(
            OWNER, REPO, run_id, head_sha="b" * 40, created_at=now - timedelta(minutes=2 * (run_id - 1000))
        )
    job = PollingJob(type="poll_repository", repository=REF, batch_size=1000)

    first = await poll_repository(services, job)
    assert (first["runs"], first["enqueued"], first["followUp"]) == (1030, 1000, True)
    listings = fake_github.requests_to("/repos/acme/project/actions/runs")
    assert ["created=%3E%3D" in r.query for r in listings] == [True] * 10 + [False]  # then since..oldest
    state = await cursor(services)
    assert state is not None and state.last_run_created_at == outage_began  # 30 not yet enqueued
    queued = await queued_ids(services, QueueName.RUNS_INGEST)
    assert {f"ingest-acme-project-{run_id}-1" for run_id in during_outage} <= queued  # oldest first

    second = await poll_repository(services, job)
    assert (second["enqueued"], second["alreadyQueued"], second["followUp"]) == (30, 1000, False)
    assert len(await queued_ids(services, QueueName.RUNS_INGEST)) == 1030
    state = await cursor(services)
    assert state is not None and state.last_run_created_at == now - timedelta(minutes=2)  # the newest run
