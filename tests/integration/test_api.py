"""The HTTP API: health, the authenticated queue-management routes, metrics."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from flakeguard.jobs.names import QueueName
from flakeguard.metrics import ORIGINAL_METRICS
from flakeguard.server.app import create_api_app, create_metrics_app
from flakeguard.services import Services

pytestmark = pytest.mark.integration
TOKEN = "test-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_api_app(services, None, TOKEN)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fg") as client:
        yield client


async def test_health_reports_components_without_secrets(api: httpx.AsyncClient, services: Services) -> None:
    response = await api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["checks"]["database"]["status"] == "healthy"
    assert body["checks"]["redis"]["status"] == "healthy"
    ready = await api.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["components"]["database"]["status"] == "up"
    assert ready.json()["components"]["redis"]["status"] == "up"
    key = services.settings.github_private_key
    assert key is not None
    for text in (response.text, ready.text):
        assert "PRIVATE KEY" not in text and key.get_secret_value()[40:80] not in text
    assert (await api.get("/health/live")).json() == {"status": "ok"}


async def test_health_is_503_when_the_database_is_unreachable(services: Services) -> None:
    from flakeguard.store.db import create_engine

    await services.engine.dispose()
    services.engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    app = create_api_app(services, None, TOKEN)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fg") as client:
        health = await client.get("/health")
        ready = await client.get("/health/ready")
    assert health.status_code == 503 and ready.status_code == 503
    assert health.json()["status"] == "unhealthy"
    assert health.json()["checks"]["database"]["status"] == "unhealthy"
    assert health.json()["checks"]["database"]["details"]["error"]
    assert ready.json()["components"]["database"]["status"] == "down"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"}],
)
async def test_queue_routes_refuse_unauthenticated_calls(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await api.get("/api/v1/queues", headers=headers)
    assert response.status_code == 401
    assert TOKEN not in response.text


async def test_the_api_is_disabled_without_a_token(services: Services) -> None:
    app = create_api_app(services, None, None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fg") as client:
        response = await client.get("/api/v1/queues", headers=AUTH)
    assert response.status_code == 503


async def test_queue_counts_and_job_listing(api: httpx.AsyncClient) -> None:
    enqueue = await api.post(
        "/api/v1/queues/runs:ingest/jobs",
        headers=AUTH,
        json={"workflowRunId": 5, "repository": {"owner": "acme", "repo": "project"}, "priority": "low"},
    )
    assert enqueue.status_code == 202
    assert enqueue.json()["queue"] == "runs:ingest" and enqueue.json()["id"] == "ingest-acme-project-5"
    assert enqueue.json()["correlationId"]  # work entering through the API starts a correlation chain
    queues = (await api.get("/api/v1/queues", headers=AUTH)).json()["queues"]
    ingest = next(q for q in queues if q["name"] == "runs:ingest")
    assert ingest["counts"]["prioritized"] + ingest["counts"]["waiting"] == 1
    jobs = (await api.get("/api/v1/queues/runs:ingest/jobs?state=prioritized", headers=AUTH)).json()["jobs"]
    assert [j["id"] for j in jobs] == ["ingest-acme-project-5"]
    assert (await api.get("/api/v1/queues/nope/jobs", headers=AUTH)).status_code == 404


async def test_a_bad_payload_is_refused_with_the_field_named(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/queues/runs:ingest/jobs", headers=AUTH, json={"workflowRunId": "x"})
    assert response.status_code == 422
    assert "workflowRunId" in response.json()["detail"]


async def test_failed_jobs_can_be_retried_through_the_api(api: httpx.AsyncClient, services: Services) -> None:
    queue = services.producer.queue(QueueName.TESTS_RECOMPUTE)
    job = await queue.add("x", {}, {"jobId": "dlq-1", "priority": 3})
    # Fail it the way a worker would, without running one.
    from bullmq import Worker

    worker = Worker(
        QueueName.TESTS_RECOMPUTE.value,
        None,
        {  # type: ignore[arg-type]
            "connection": services.redis.bullmq_connection(),
            "prefix": services.redis.prefix,
            "autorun": False,
        },
    )
    token = "test-token"
    fetched = await worker.getNextJob(token)
    assert fetched is not None and fetched.id == job.id
    await fetched.moveToFailed(RuntimeError("boom"), token)
    await worker.close()

    failed = (await api.get("/api/v1/queues/tests:recompute/jobs?state=failed", headers=AUTH)).json()["jobs"]
    assert failed[0]["id"] == "dlq-1" and failed[0]["failedReason"] == "boom"
    assert (
        await api.post("/api/v1/queues/tests:recompute/jobs/dlq-1/retry", headers=AUTH)
    ).status_code == 200
    assert str(await queue.getJobState("dlq-1")) in ("waiting", "prioritized")
    again = await api.post("/api/v1/queues/tests:recompute/jobs/dlq-1/retry", headers=AUTH)
    assert again.status_code == 409


async def test_pause_and_resume(api: httpx.AsyncClient, services: Services) -> None:
    assert (await api.post("/api/v1/queues/polling/pause", headers=AUTH)).json()["paused"] is True
    assert await services.producer.queue(QueueName.POLLING).isPaused()
    await api.post("/api/v1/queues/polling/resume", headers=AUTH)
    assert not await services.producer.queue(QueueName.POLLING).isPaused()


async def test_metrics_expose_the_original_names_and_not_the_old_ones(services: Services) -> None:
    app = create_metrics_app(services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fg") as client:
        text = (await client.get("/metrics")).text
        openmetrics = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"}
        )
    declared = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))
    assert set(ORIGINAL_METRICS) <= declared
    assert {"flakeguard_worker_junit_refused_total", "flakeguard_webhook_deliveries_total"} <= declared
    renamed = ("queue_depth", "jobs_active", "job_duration_seconds")
    assert not [name for name in declared if name.removeprefix("flakeguard_worker_") in renamed]
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
