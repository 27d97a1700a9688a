"""Shared fixtures: a real PostgreSQL database per test run, a Redis key prefix per test, the fake GitHub.

Services are real: PostgreSQL at TEST_DATABASE_URL (default postgres@127.0.0.1:5432) and Redis at
TEST_REDIS_URL (default 127.0.0.1:6379/0). `make test` starts them where they are not running.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis

from flakeguard.config import Settings
from flakeguard.services import Services
from flakeguard.store.migrate import upgrade
from flakeguard.testing.fake_github import FakeGitHub

# JSON log lines in every process the tests start, as in production (development logs for humans).
os.environ.setdefault("FLAKEGUARD_ENV", "test")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TABLES = (
    "check_runs",
    "polling_cursors",
    "quarantine_events",
    "quarantine",
    "flakiness_results",
    "test_executions",
    "test_cases",
    "workflow_runs",
    "repositories",
)


def _pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


@contextmanager
def migrated_database(name: str) -> Iterator[str]:
    """Creates and migrates PostgreSQL database `name`; drops it on the way out. Not for use inside
    a running event loop."""

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = _pg_url(name)
        upgrade(url.replace("postgresql://", "postgresql+asyncpg://"))
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run; dropped at the end."""
    with migrated_database(f"flakeguard_test_{os.getpid()}_{uuid.uuid4().hex[:8]}") as url:
        yield url


@pytest.fixture
def clean_pg(pg_database: str) -> str:
    """The test database, emptied before the test."""
    empty_database(pg_database)
    return pg_database


def empty_database(database_url: str) -> None:
    """Every FlakeGuard table emptied (for module-scoped fixtures that share one filled database)."""

    async def truncate() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()

    asyncio.run(truncate())


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"fgtest{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        yield gh


def make_settings(**values: Any) -> Settings:
    """Settings from explicit values (environment variable names), ignoring the process environment."""
    base = {"FLAKEGUARD_ENV": "test", "LOG_LEVEL": "warn", "POLLING_ENABLED": "false"}
    return Settings.model_validate({**base, **values})


@pytest.fixture
def settings(clean_pg: str, redis_prefix: str, fake_github: FakeGitHub, tmp_path: Path) -> Settings:
    return make_settings(
        DATABASE_URL=clean_pg,
        REDIS_URL=REDIS_URL,
        REDIS_PREFIX=redis_prefix,
        GITHUB_API_URL=fake_github.url,
        GITHUB_APP_ID=str(fake_github.app_id),
        GITHUB_PRIVATE_KEY=fake_github.private_key_pem,
        FLAKEGUARD_DATA_DIR=str(tmp_path / "data"),
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    svc = Services.create(settings)
    try:
        yield svc
    finally:
        await svc.close()
