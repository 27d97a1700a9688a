"""Apply Alembic migrations programmatically (`flakeguard migrate`, `flakeguard up`, tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(async_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", async_url.replace("%", "%%"))
    return cfg


def upgrade(async_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(async_url), revision)


async def upgrade_async(async_url: str, revision: str = "head") -> None:
    # env.py drives its own event loop, so run it in a worker thread.
    await asyncio.to_thread(upgrade, async_url, revision)
