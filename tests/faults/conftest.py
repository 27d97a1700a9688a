"""Fixtures of the fault scenarios: each gets its own redis-server (append-only, so that a restart
keeps the queues), its own database and its own fake GitHub."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from flakeguard.testing.fake_github import FakeGitHub

from .harness import Jobs, WorkerProcess, World, own_database
from .redis_servers import RedisServer


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, None, "--appendonly", "yes", "--appendfsync", "always").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fault_db() -> Iterator[str]:
    with own_database() as url:
        yield url


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
async def jobs(aof_redis: RedisServer) -> AsyncIterator[Jobs]:
    queues = Jobs(aof_redis.url)
    try:
        yield queues
    finally:
        await queues.close()


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    """Every worker process a scenario starts; killed at the end whatever happened."""
    started: list[WorkerProcess] = []
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
def world(
    tmp_path: Path,
    aof_redis: RedisServer,
    fault_db: str,
    gh: FakeGitHub,
    jobs: Jobs,
    workers: list[WorkerProcess],
) -> World:
    return World(tmp_path, aof_redis, fault_db, gh, jobs, workers)
