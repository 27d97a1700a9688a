"""At start-up a poll runs at once when one is due (never polled, too long ago, another GitHub);
without GitHub credentials, or with POLLING_ENABLED=false, there is no schedule at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flakeguard.config import Settings
from flakeguard.jobs.names import QueueName
from flakeguard.pipeline.poll_schedule import SCHEDULER_ID, poll_due, record_poll_all, start_polling
from flakeguard.services import Services

pytestmark = pytest.mark.integration


async def startup_jobs(services: Services) -> list[str]:
    jobs = await services.producer.queue(QueueName.POLLING).getJobs(["waiting", "prioritized"])
    return sorted(str(j.id) for j in jobs if str(j.id).startswith("poll-startup-"))


async def has_scheduler(services: Services) -> bool:
    return bool(await services.producer.queue(QueueName.POLLING).isJobScheduler(SCHEDULER_ID))


async def test_a_due_poll_runs_at_start_up_and_a_recent_one_waits_for_the_schedule(
    settings: Settings,
) -> None:
    services = Services.create(settings.model_copy(update={"polling_enabled": True}))
    try:
        # A new scheduler polls at once by itself: no second poll beside it.
        assert await start_polling(services) == "on, every 15 min; polling now (first schedule)"
        assert await has_scheduler(services) and await startup_jobs(services) == []
        # A scheduler kept from an earlier run waits for its next turn: the start-up poll runs now.
        assert await poll_due(services) == "never polled"
        assert await start_polling(services) == "on, every 15 min; polling now (never polled)"
        assert len(await startup_jobs(services)) == 1

        await record_poll_all(services)
        assert await poll_due(services) is None
        assert await start_polling(services) == "on, every 15 min"
        assert len(await startup_jobs(services)) == 1  # nothing added

        await record_poll_all(services, at=datetime.now(UTC) - timedelta(minutes=16))
        assert await poll_due(services) == "last poll 16 min ago"
    finally:
        await services.close()


async def test_a_poll_against_another_github_is_not_a_recent_poll(settings: Settings) -> None:
    """The README's order: the quick start polled nothing (no GitHub), then the demo's fake."""
    before = Services.create(settings.model_copy(update={"github_api_url": "http://127.0.0.1:9"}))
    try:
        await record_poll_all(before)
    finally:
        await before.close()
    services = Services.create(settings)
    try:
        assert await poll_due(services) == "GitHub settings changed since the last poll"
    finally:
        await services.close()


async def test_without_github_or_with_polling_off_the_schedule_is_removed(settings: Settings) -> None:
    no_github = {"github_app_id": None, "github_private_key": None}
    for off, described in (
        (
            no_github,
            "off (GitHub is not configured: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY, or GITHUB_TOKEN)",
        ),
        ({"polling_enabled": False}, "off (POLLING_ENABLED=false)"),
    ):
        for update, scheduled in (({}, True), (off, False)):
            services = Services.create(settings.model_copy(update={"polling_enabled": True, **update}))
            try:
                result = await start_polling(services)
                assert await has_scheduler(services) is scheduled
                if not scheduled:
                    assert result == described
            finally:
                await services.close()
