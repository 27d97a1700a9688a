"""When polling runs: every POLLING_INTERVAL_MINUTES (a bullmq job scheduler kept in Redis), and at
once at start-up when a poll is due.

The scheduler survives restarts, with its next run where it was: a restart alone would not poll for
up to a whole interval. So every `poll_all` records when it ran and with which GitHub (never a
secret: the API URL and the App id, or "token"); at start-up a poll runs at once when none ever ran,
the last is older than the interval, or it ran against another GitHub (the demo's fake after the
quick start's nothing). Without GitHub credentials polling is off: every poll would fail.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from flakeguard.config import Settings
from flakeguard.jobs.names import Priority, QueueName
from flakeguard.jobs.payloads import PollingJob
from flakeguard.jobs.producer import safe_id
from flakeguard.logging import get_logger
from flakeguard.services import Services

log = get_logger("flakeguard.polling")
SCHEDULER_ID = "flakeguard-poll-all"
LAST_POLL = ("polling", "last-poll-all")
JOB_OPTIONS = {"priority": Priority.LOW.bullmq, "removeOnComplete": 20, "removeOnFail": 20}


def github_identity(settings: Settings) -> str | None:
    """Which GitHub polling talks to, without secrets; None when no credentials are configured."""
    if settings.github_app_id and settings.github_private_key is not None:
        return f"app {settings.github_app_id} at {settings.github_api_url}"
    if settings.github_token is not None:
        return f"token at {settings.github_api_url}"
    return None


async def schedule_polling(services: Services) -> None:
    every_ms = services.settings.polling_interval_minutes * 60_000
    await services.producer.queue(QueueName.POLLING).upsertJobScheduler(
        SCHEDULER_ID, {"every": every_ms}, "poll", PollingJob(type="poll_all").to_wire(), JOB_OPTIONS
    )


async def record_poll_all(services: Services, at: datetime | None = None) -> None:
    moment = (at or datetime.now(UTC)).isoformat()
    github = github_identity(services.settings) or ""
    await services.kv.hset(services.key(*LAST_POLL), mapping={"at": moment, "github": github})


async def poll_due(services: Services, now: datetime | None = None) -> str | None:
    """Why a poll should run now, or None when the last one is recent and against this GitHub."""
    last = await services.kv.hgetall(services.key(*LAST_POLL))
    if not last or "at" not in last:
        return "never polled"
    if last.get("github", "") != (github_identity(services.settings) or ""):
        return "GitHub settings changed since the last poll"
    age = (now or datetime.now(UTC)) - datetime.fromisoformat(str(last["at"]))
    if age >= timedelta(minutes=services.settings.polling_interval_minutes):
        return f"last poll {int(age.total_seconds() // 60)} min ago"
    return None


async def start_polling(services: Services) -> str:
    """Schedule polling (or remove the schedule when polling is off) and poll now when due; returns
    what was done, for the start-up log line."""
    settings = services.settings
    queue = services.producer.queue(QueueName.POLLING)
    if not settings.polling_enabled:
        await queue.removeJobScheduler(SCHEDULER_ID)
        return "off (POLLING_ENABLED=false)"
    if github_identity(settings) is None:
        await queue.removeJobScheduler(SCHEDULER_ID)
        return "off (GitHub is not configured: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY, or GITHUB_TOKEN)"
    scheduled_before = await queue.isJobScheduler(SCHEDULER_ID)
    await schedule_polling(services)
    every = f"every {settings.polling_interval_minutes} min"
    if not scheduled_before:
        # A new scheduler's first poll is due at once: a start-up poll besides it would poll every
        # repository twice, at the same time.
        return f"on, {every}; polling now (first schedule)"
    reason = await poll_due(services)
    if reason is None:
        return f"on, {every}"
    # Processes started within the same minute share one start-up poll (job id dedup).
    job_id = safe_id("poll", "startup", int(time.time() // 60))
    await queue.add("poll", PollingJob(type="poll_all").to_wire(), {**JOB_OPTIONS, "jobId": job_id})
    log.info("startup_poll_enqueued", reason=reason, job_id=job_id)
    return f"on, {every}; polling now ({reason})"
