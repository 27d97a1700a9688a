"""Analyses of one repository take turns, and each reads what was committed before its turn came.

Two runs ingested together used to be analysed at once: the analysis that had read less could write
last, and the report stayed at 24 of 30 executions (seen in the README's demo on SQLite)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import select

from flakeguard.config import Settings
from flakeguard.jobs.payloads import RepositoryRef, RunsAnalyzeJob
from flakeguard.pipeline.analyze import analyze_run
from flakeguard.services import Services
from flakeguard.store.migrate import upgrade_async
from flakeguard.store.models import FlakinessResult
from flakeguard.store.repository import lock_for_analysis

from .history_helpers import T0, F, History, P

pytestmark = pytest.mark.integration
HOUR = timedelta(hours=1)


async def waiting_on_a_lock(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        )
    finally:
        await conn.close()


async def test_an_analysis_waiting_for_its_turn_reads_the_runs_committed_meanwhile(
    services: Services, settings: Settings
) -> None:
    h = await History(services).create()
    await h.run({"test_a": P}, at=T0)
    second = await h.run({"test_a": F}, at=T0 + HOUR)
    job = RunsAnalyzeJob(workflow_run_id=second, repository=RepositoryRef(owner=h.owner, repo=h.name))

    async with services.sessions.begin() as holder:
        await lock_for_analysis(holder, h.owner, h.name)  # another analysis is running
        analysis = asyncio.create_task(analyze_run(services, job, now=T0 + 3 * HOUR))
        url = str(settings.database_url)
        for _ in range(100):  # until the analysis waits for its turn
            if await waiting_on_a_lock(url) or analysis.done():
                break
            await asyncio.sleep(0.05)
        assert not analysis.done() and await waiting_on_a_lock(url) == 1
        await h.run({"test_a": P}, at=T0 + 2 * HOUR)  # a third run is ingested meanwhile
    await analysis

    async with services.sessions() as session:
        result = (await session.execute(select(FlakinessResult))).scalar_one()
    assert (result.executions, result.failures) == (3, 1)


async def test_on_sqlite_the_analyses_of_one_process_take_turns(settings: Settings, tmp_path: Path) -> None:
    """SQLite serves one process (`flakeguard up`): its analyses wait for each other in memory, and
    ingests are not held up meanwhile."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'flakeguard.db'}"
    await upgrade_async(url)
    services = Services.create(
        settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'flakeguard.db'}"})
    )
    try:
        h = await History(services).create()
        await h.run({"test_a": P}, at=T0)
        second = await h.run({"test_a": F}, at=T0 + HOUR)
        job = RunsAnalyzeJob(workflow_run_id=second, repository=RepositoryRef(owner=h.owner, repo=h.name))
        async with services.analysis_turn(h.full_name):  # another analysis is running
            analysis = asyncio.create_task(analyze_run(services, job, now=T0 + 3 * HOUR))
            await asyncio.sleep(0)
            await h.run({"test_a": P}, at=T0 + 2 * HOUR)  # an ingest commits meanwhile
            assert not analysis.done()
        await analysis
        async with services.sessions() as session:
            result = (await session.execute(select(FlakinessResult))).scalar_one()
        assert (result.executions, result.failures) == (3, 1)
    finally:
        await services.close()
