"""Redis going away and Redis Cluster, on throw-away servers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flakeguard.config import Settings
from flakeguard.jobs.names import QueueName
from flakeguard.jobs.payloads import TestsRecomputeJob
from flakeguard.services import Services
from flakeguard.workers.context import JobContext
from flakeguard.workers.host import WorkerHost
from tests.conftest import make_settings

from .redis_servers import RedisServer, start_cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PAYLOAD = TestsRecomputeJob.model_validate({"repository": {"owner": "acme", "repo": "project"}})


class Recorder:
    """A handler that records job ids and lets a test wait for the first one."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.done = asyncio.Event()

    async def __call__(self, ctx: JobContext) -> dict[str, Any]:
        self.seen.append(str(ctx.job.id))
        self.done.set()
        return {}

    def host(self, services: Services) -> WorkerHost:
        return WorkerHost(
            services, {QueueName.TESTS_RECOMPUTE: self}, [QueueName.TESTS_RECOMPUTE], concurrency=1
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[RedisServer]]:
    nodes = start_cluster(tmp_path)
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


async def test_queues_work_on_a_redis_cluster(cluster: list[RedisServer], settings: Settings) -> None:
    cluster_settings = settings.model_copy(
        update={
            "redis_cluster_enabled": True,
            "redis_cluster_nodes": ",".join(f"127.0.0.1:{n.port}" for n in cluster),
        }
    )
    services = Services.create(cluster_settings)
    recorder = Recorder()
    host = recorder.host(services)
    try:
        # Hash-tagged, so that every key of a queue lands in one slot.
        assert services.redis.prefix == "{" + settings.redis_prefix + "}"
        await host.start()
        await services.producer.recompute(PAYLOAD, job_id="cluster-job")
        await asyncio.wait_for(recorder.done.wait(), 20)
        await host.close()
        assert recorder.seen == ["cluster-job"]
        assert (await services.producer.counts())["tests:recompute"]["completed"] == 1
    finally:
        await host.close()
        await services.close()


async def test_the_worker_reconnects_after_redis_restarts(tmp_path: Path, clean_pg: str) -> None:
    server = RedisServer(tmp_path).start()
    services = Services.create(make_settings(DATABASE_URL=clean_pg, REDIS_URL=server.url))
    recorder = Recorder()
    host = recorder.host(services)
    await host.start()
    restarted = RedisServer(tmp_path, server.port)
    try:
        server.stop()
        await asyncio.sleep(2)  # the worker's connections fail and retry meanwhile
        restarted.start()
        for _ in range(50):  # the producer's own connection reconnects too
            try:
                await services.producer.recompute(PAYLOAD, job_id="after-restart")
                break
            except Exception:
                await asyncio.sleep(0.2)
        await asyncio.wait_for(recorder.done.wait(), 40)
        assert recorder.seen == ["after-restart"]
    finally:
        await host.close()
        await services.close()
        restarted.stop()
