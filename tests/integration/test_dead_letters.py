"""Manual retry of dead letters is a fresh start: the API's retry/retry-failed and the CLI's
`queues retry`/`retry-failed` give a failed job all its attempts again (bullmq's own retry kept
`attemptsMade`, so a retried dead letter got one single attempt)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flakeguard.jobs.names import QueueName
from flakeguard.server.app import create_api_app
from flakeguard.services import Services
from flakeguard.workers.context import JobContext

from .helpers import process_env
from .test_cli import flakeguard
from .test_worker import hosted, wait_state

pytestmark = pytest.mark.integration
QUEUE = QueueName.TESTS_RECOMPUTE
TOKEN = "test-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class AlwaysFailing:
    """Records the `attemptsMade` each job starts with, and fails."""

    def __init__(self) -> None:
        self.started_with: dict[str, list[int]] = defaultdict(list)

    async def __call__(self, ctx: JobContext) -> dict[str, Any]:
        self.started_with[str(ctx.job.id)].append(ctx.job.attemptsMade)
        raise RuntimeError("still broken")


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_api_app(services, None, TOKEN)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fg") as client:
        yield client


async def _dead_letters(services: Services, handler: AlwaysFailing, *job_ids: str) -> None:
    queue = services.producer.queue(QUEUE)
    async with hosted(services, {QUEUE: handler}, [QUEUE]):
        for job_id in job_ids:
            assert await wait_state(queue, job_id, {"failed"}, 30) == "failed"


async def test_api_retries_give_dead_letters_all_their_attempts_again(
    services: Services, api: httpx.AsyncClient
) -> None:
    queue = services.producer.queue(QUEUE)
    for job_id in ("dead-a", "dead-b"):
        await queue.add(
            "x",
            {},
            {"jobId": job_id, "attempts": 2, "priority": 3, "backoff": {"type": "flakeguard", "delay": 20}},
        )
    handler = AlwaysFailing()
    await _dead_letters(services, handler, "dead-a", "dead-b")

    response = await api.post(f"/api/v1/queues/{QUEUE.value}/retry-failed", headers=AUTH)
    assert response.json() == {"queue": QUEUE.value, "retried": 2}
    job = await queue.getJob("dead-a")
    assert (await queue.getJobState("dead-a"), job.attemptsMade) == ("prioritized", 0)
    await _dead_letters(services, handler, "dead-a", "dead-b")

    response = await api.post(f"/api/v1/queues/{QUEUE.value}/jobs/dead-a/retry", headers=AUTH)
    assert response.json() == {"queue": QUEUE.value, "id": "dead-a", "retried": True}
    await _dead_letters(services, handler, "dead-a")

    # Two full attempts after each manual retry, not one.
    assert handler.started_with == {"dead-a": [0, 1, 0, 1, 0, 1], "dead-b": [0, 1, 0, 1]}
    conflict = await api.post(f"/api/v1/queues/{QUEUE.value}/jobs/nothing/retry", headers=AUTH)
    assert conflict.status_code == 404


async def test_the_cli_retry_commands_start_dead_letters_afresh(services: Services, tmp_path: Path) -> None:
    queue = services.producer.queue(QUEUE)
    await queue.add(
        "x",
        {},
        {"jobId": "dead-c", "attempts": 2, "priority": 3, "backoff": {"type": "flakeguard", "delay": 20}},
    )
    handler = AlwaysFailing()
    await _dead_letters(services, handler, "dead-c")
    env = process_env(
        {
            "REDIS_URL": str(services.settings.redis_url),
            "REDIS_PREFIX": services.settings.redis_prefix,
            "FLAKEGUARD_DATA_DIR": str(tmp_path),
        }
    )
    retried = flakeguard(env, "queues", "retry", QUEUE.value, "dead-c")
    assert retried.returncode == 0 and "retried dead-c" in retried.stdout, retried.stderr
    again = flakeguard(env, "queues", "retry", QUEUE.value, "dead-c")
    assert again.returncode == 1 and "not failed" in again.stderr
    await _dead_letters(services, handler, "dead-c")
    assert flakeguard(env, "queues", "retry-failed", QUEUE.value).stdout.startswith("retried 1 ")
    await _dead_letters(services, handler, "dead-c")
    assert handler.started_with == {"dead-c": [0, 1, 0, 1, 0, 1]}
