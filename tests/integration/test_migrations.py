"""The migrations build exactly the schema the models describe, on PostgreSQL and on SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from flakeguard.config import to_async_database_url
from flakeguard.store.migrate import upgrade
from flakeguard.store.models import Base

pytestmark = pytest.mark.integration


def schema_differences(async_url: str) -> list[object]:
    def compare(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))

    async def run() -> list[object]:
        engine = create_async_engine(async_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_postgresql_schema_matches_the_models(pg_database: str) -> None:
    # The session fixture created this database with `flakeguard.store.migrate.upgrade`.
    assert schema_differences(to_async_database_url(pg_database)) == []


def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'flakeguard.db'}"
    upgrade(url)
    assert schema_differences(url) == []
