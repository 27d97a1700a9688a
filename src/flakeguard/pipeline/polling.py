"""Polling: discover repositories and completed runs, so nothing is lost when a webhook is.

A job scheduler enqueues `poll_all` every POLLING_INTERVAL_MINUTES, and a start-up poll runs when one
is due (`poll_schedule`). `poll_all` refreshes the
repositories the App is installed on and enqueues one `poll_repository` per active repository.
`poll_repository` lists completed runs created within the lookback (or since its cursor minus an
overlap, after an outage; see `window_start`) and enqueues `runs:ingest` for run attempts not yet stored.
The ingest job id dedups against the webhook's job for the same attempt. GitHub answers a filtered
listing with its newest 1,000 runs only, so a busier window is listed in slices (`list_window`), and
the cursor moves only once every run of the window has been seen and enqueued.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_

from flakeguard.github.client import GitHubClient
from flakeguard.jobs.names import Priority, QueueName
from flakeguard.jobs.payloads import PayloadError, PollingJob, RepositoryRef, RunMetadata, RunsIngestJob
from flakeguard.jobs.producer import ingest_job_id, safe_id
from flakeguard.logging import get_logger
from flakeguard.pipeline.poll_schedule import record_poll_all
from flakeguard.pipeline.runs import parse_time
from flakeguard.services import Services
from flakeguard.store.models import PollingCursor, Repository, WorkflowRun
from flakeguard.store.repository import upsert_repository

log = get_logger("flakeguard.polling")
OVERLAP = timedelta(hours=6)
FOLLOW_UP_DELAY_MS = 15_000
MAX_LISTINGS = 20  # listings (of up to 1,000 runs each) one poll may walk through
STORED_LOOKUP_CHUNK = 1000


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


async def poll_all(services: Services, job: PollingJob, round_id: str | None = None) -> dict[str, Any]:
    """One round: discover, then one `poll_repository` per active repository. Their job ids carry the
    round (the poll_all job's own id, else the polling interval), so a retried round adds nothing
    twice while a start-up round is never mistaken for the interval's earlier one."""
    discovered = await discover_repositories(services)
    async with services.sessions() as session:
        repos = (await session.execute(select(Repository).where(Repository.active.is_(True)))).scalars().all()
    bucket = round_id or int(
        datetime.now(UTC).timestamp() // max(services.settings.polling_interval_minutes * 60, 60)
    )
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
    await record_poll_all(services)
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


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def list_window(
    client: GitHubClient, owner: str, repo: str, since: datetime
) -> tuple[list[dict[str, Any]], bool]:
    """The completed runs created since `since`, and whether they are all of them.

    GitHub cuts a filtered listing to its newest 1,000 runs. The runs it left out are older than
    the oldest one it listed, so the next listing asks for `created=since..oldest` (inclusive: a run
    on the boundary comes twice and is kept once), down to `since` or `MAX_LISTINGS` listings.
    """
    start = _iso(since)
    created = f">={start}"
    runs: dict[int, dict[str, Any]] = {}
    for _ in range(MAX_LISTINGS):
        listing = await client.list_workflow_runs(owner, repo, status="completed", created=created)
        for run in listing.runs:
            runs.setdefault(int(run["id"]), run)
        if listing.complete:
            return list(runs.values()), True
        oldest = min((t for t in (parse_time(r.get("created_at")) for r in listing.runs) if t), default=None)
        older = f"{start}..{_iso(oldest)}" if oldest is not None else None
        if older is None or older == created:  # nothing older to ask for: over 1,000 runs in one second
            break
        created = older
    return list(runs.values()), False


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
    runs, complete = await list_window(client, ref.owner, ref.repo, since)
    if not complete:
        log.warn(
            "repository_listing_cut_short",
            repository=f"{ref.owner}/{ref.repo}",
            runs=len(runs),
            since=_iso(since),
            reason=f"more completed runs than {MAX_LISTINGS} listings of 1,000 hold",
        )
    wanted = [(int(r["id"]), int(r.get("run_attempt") or 1)) for r in runs]
    stored: set[tuple[int, int]] = set()
    async with services.sessions() as session:
        # In chunks: a window walked in slices can hold more pairs than one statement may bind.
        for i in range(0, len(wanted), STORED_LOOKUP_CHUNK):
            rows = await session.execute(
                select(WorkflowRun.run_id, WorkflowRun.run_attempt).where(
                    WorkflowRun.repository_id == repo_id,
                    tuple_(WorkflowRun.run_id, WorkflowRun.run_attempt).in_(
                        wanted[i : i + STORED_LOOKUP_CHUNK]
                    ),
                )
            )
            stored |= {(int(a), int(b)) for a, b in rows.all()}
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
        # Past runs never seen (a listing cut short) or not yet enqueued (a backlog), never.
        if newest is not None and complete and not more:
            cursor.last_run_created_at = max(newest, cursor.last_run_created_at or newest)
        cursor.last_polled_at = now
    log.info(
        "repository_polled",
        repository=f"{ref.owner}/{ref.repo}",
        runs=len(runs),
        enqueued=enqueued,
        follow_up=more,
        complete=complete,
    )
    return {
        "repository": f"{ref.owner}/{ref.repo}",
        "runs": len(runs),
        "enqueued": enqueued,
        "alreadyStored": len(stored),
        "alreadyQueued": already_queued,
        "followUp": more,
    }


async def run_polling_job(services: Services, job: PollingJob, job_id: str | None = None) -> dict[str, Any]:
    if job.type == "poll_repository":
        if job.repository is None:
            raise PayloadError("invalid PollingJob payload: repository: required for type poll_repository")
        return await poll_repository(services, job)
    if job.type == "discover_repositories":
        return {"discovered": await discover_repositories(services)}
    return await poll_all(services, job, round_id=job_id)
