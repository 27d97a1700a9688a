"""Polling: discover repositories and completed runs, so nothing is lost when a webhook is.

A job scheduler enqueues `poll_all` every POLLING_INTERVAL_MINUTES. `poll_all` refreshes the
repositories the App is installed on and enqueues one `poll_repository` per active repository.
`poll_repository` lists completed runs created within the lookback (or since its cursor minus an
overlap, after an outage; see `window_start`) and enqueues `runs:ingest` for run attempts not yet stored.
The ingest job id dedups against the webhook's job for the same attempt.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_

from flakeguard.jobs.names import Priority, QueueName
from flakeguard.jobs.payloads import PayloadError, PollingJob, RepositoryRef, RunMetadata, RunsIngestJob
from flakeguard.jobs.producer import ingest_job_id, safe_id
from flakeguard.logging import get_logger
from flakeguard.pipeline.runs import parse_time
from flakeguard.services import Services
from flakeguard.store.models import PollingCursor, Repository, WorkflowRun
from flakeguard.store.repository import upsert_repository

log = get_logger("flakeguard.polling")
SCHEDULER_ID = "flakeguard-poll-all"
OVERLAP = timedelta(hours=6)
FOLLOW_UP_DELAY_MS = 15_000


async def schedule_polling(services: Services) -> None:
    every_ms = services.settings.polling_interval_minutes * 60_000
    await services.producer.queue(QueueName.POLLING).upsertJobScheduler(
        SCHEDULER_ID,
        {"every": every_ms},
        "poll",
        PollingJob(type="poll_all").to_wire(),
        {"priority": Priority.LOW.bullmq, "removeOnComplete": 20, "removeOnFail": 20},
    )


async def discover_repositories(services: Services) -> int:
    """Upsert every repository the App's installations can see; returns how many."""
    app = services.github.app
    if app is None:
        return 0
    count = 0
    for installation in await app.app_client().list_installations():
        client = app.installation_client(int(installation["id"]))
        for repo in await client.list_installation_repositories():
            async with services.sessions.begin() as session:
                await upsert_repository(
                    session,
                    repo["owner"]["login"],
                    repo["name"],
                    installation_id=int(installation["id"]),
                    default_branch=repo.get("default_branch"),
                )
            count += 1
    return count


async def poll_all(services: Services, job: PollingJob) -> dict[str, Any]:
    discovered = await discover_repositories(services)
    async with services.sessions() as session:
        repos = (await session.execute(select(Repository).where(Repository.active.is_(True)))).scalars().all()
    bucket = int(datetime.now(UTC).timestamp() // max(services.settings.polling_interval_minutes * 60, 60))
    for repo in repos:
        await services.producer.poll(
            PollingJob(
                type="poll_repository",
                repository=RepositoryRef(
                    owner=repo.owner, repo=repo.name, installation_id=repo.installation_id
                ),
                batch_size=job.batch_size or services.settings.polling_batch_size,
                lookback_hours=job.lookback_hours,
            ),
            job_id=safe_id("poll", repo.owner, repo.name, bucket),
        )
    return {"discovered": discovered, "repositories": len(repos)}


def window_start(now: datetime, cursor: datetime | None, lookback_hours: int) -> datetime:
    """Where the `created>=` window of a poll starts: the lookback, reaching further back to the
    cursor minus the overlap after an outage; floored to the hour.

    The flooring keeps the listing URL the same from poll to poll, so an unchanged repository costs
    a 304 (free) instead of a full listing; `now - lookback` alone changed the URL on every poll.
    The window never shrinks below the lookback: a re-run keeps its run's `created_at`, so re-runs
    of runs created days ago are still found.
    """
    start = now - timedelta(hours=lookback_hours)
    if cursor is not None:
        start = min(start, cursor - OVERLAP)
    return start.replace(minute=0, second=0, microsecond=0)


async def poll_repository(services: Services, job: PollingJob) -> dict[str, Any]:
    assert job.repository is not None
    ref = job.repository
    now = datetime.now(UTC)
    async with services.sessions.begin() as session:
        repo = await upsert_repository(session, ref.owner, ref.repo, installation_id=ref.installation_id)
        cursor = await session.get(PollingCursor, repo.id)
        since = window_start(now, cursor.last_run_created_at if cursor else None, job.lookback_hours)
        repo_id, installation_id = repo.id, repo.installation_id
    client = await services.github.client_for(ref.owner, ref.repo, installation_id)
    runs = await client.list_workflow_runs(
        ref.owner, ref.repo, status="completed", created=f">={since.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    )
    wanted = [(int(r["id"]), int(r.get("run_attempt") or 1)) for r in runs]
    async with services.sessions() as session:
        stored = set()
        if wanted:
            rows = await session.execute(
                select(WorkflowRun.run_id, WorkflowRun.run_attempt).where(
                    WorkflowRun.repository_id == repo_id,
                    tuple_(WorkflowRun.run_id, WorkflowRun.run_attempt).in_(wanted),
                )
            )
            stored = {(int(a), int(b)) for a, b in rows.all()}
    enqueued = already_queued = 0
    limit = job.batch_size or services.settings.polling_batch_size
    ingest_queue = services.producer.queue(QueueName.RUNS_INGEST)
    more = False
    for run in sorted(runs, key=lambda r: str(r.get("created_at"))):
        key = (int(run["id"]), int(run.get("run_attempt") or 1))
        if key in stored:
            continue
        ingest = RunsIngestJob(
            workflow_run_id=key[0],
            repository=RepositoryRef(owner=ref.owner, repo=ref.repo, installation_id=installation_id),
            priority=Priority.LOW,
            metadata=RunMetadata(
                run_attempt=key[1],
                head_sha=run.get("head_sha"),
                head_branch=run.get("head_branch"),
                event=run.get("event"),
                conclusion=run.get("conclusion"),
                run_status=run.get("status"),
                triggered_by="polling",
            ),
        )
        # Waiting, running or failed (the dead letters, retried by hand): not enqueued again, not counted.
        if await ingest_queue.getJobState(ingest_job_id(ingest)) != "unknown":
            already_queued += 1
            continue
        if enqueued >= limit:
            more = True
            break
        await services.producer.ingest(ingest)
        enqueued += 1
    if more:
        # A backlog (first poll, an outage) drains in batches of POLLING_BATCH_SIZE, one follow-up poll
        # shortly after another, instead of one batch per polling interval.
        await services.producer.poll(
            job.model_copy(update={"type": "poll_repository"}),
            job_id=safe_id("poll", ref.owner, ref.repo, "more", int(now.timestamp())),
            delay=FOLLOW_UP_DELAY_MS,
        )
    newest = max((t for t in (parse_time(r.get("created_at")) for r in runs) if t is not None), default=None)
    async with services.sessions.begin() as session:
        cursor = await session.get(PollingCursor, repo_id)
        if cursor is None:
            cursor = PollingCursor(repository_id=repo_id)
            session.add(cursor)
        if newest is not None and not more:
            cursor.last_run_created_at = max(newest, cursor.last_run_created_at or newest)
        cursor.last_polled_at = now
    log.info(
        "repository_polled",
        repository=f"{ref.owner}/{ref.repo}",
        runs=len(runs),
        enqueued=enqueued,
        follow_up=more,
    )
    return {
        "repository": f"{ref.owner}/{ref.repo}",
        "runs": len(runs),
        "enqueued": enqueued,
        "alreadyStored": len(stored),
        "alreadyQueued": already_queued,
        "followUp": more,
    }


async def run_polling_job(services: Services, job: PollingJob) -> dict[str, Any]:
    if job.type == "poll_repository":
        if job.repository is None:
            raise PayloadError("invalid PollingJob payload: repository: required for type poll_repository")
        return await poll_repository(services, job)
    if job.type == "discover_repositories":
        return {"discovered": await discover_repositories(services)}
    return await poll_all(services, job)
