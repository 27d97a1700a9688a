"""The database alone, for commands that work in-process (no Redis, no GitHub)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from flakeguard.config import Settings


@dataclass
class Database:
    """Settings and sessions without Redis or GitHub: what the in-process commands need."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    from flakeguard.store.db import create_engine, session_factory

    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.async_database_url)
    try:
        yield Database(settings, session_factory(engine))
    finally:
        await engine.dispose()
