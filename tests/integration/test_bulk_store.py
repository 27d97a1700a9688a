"""The COPY bulk path of `store_executions` on real PostgreSQL: same rows as the generic path,
idempotent re-ingest (whole and partial), one transaction per run attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flakeguard.config import to_async_database_url
from flakeguard.junit import read_report
from flakeguard.model import Outcome, TestExecution
from flakeguard.store import repository as repo_mod
from flakeguard.store.bulk import supports_bulk
from flakeguard.store.db import create_engine, session_factory
from flakeguard.store.models import TestCase
from flakeguard.store.repository import (
    RunInfo,
    finish_run,
    key_hash,
    record_run,
    store_executions,
    upsert_repository,
)
from flakeguard.testing.reports import CaseSpec, SuiteSpec, junit_xml

pytestmark = pytest.mark.integration

Pairs = list[tuple[str, TestExecution]]


@pytest.fixture
async def sessions(clean_pg: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine: AsyncEngine = create_engine(to_async_database_url(clean_pg))
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def report(name: str, cases: list[CaseSpec]) -> Pairs:
    parsed = read_report(junit_xml([SuiteSpec(name, cases)]), artifact="results", member=f"{name}.xml")
    assert not parsed.refusals
    return list(parsed.executions())


def reports() -> list[Pairs]:
    api = report(
        "api",
        [
            CaseSpec("tests.api.T", "test_ok", file="tests/api.py", line=3),
            CaseSpec("tests.api.T", "test_fails", outcome=Outcome.FAILED, line=9),
            CaseSpec("tests.api.T", "test_flaky", flaky_failures=2),  # 3 executions, ordinals 0..2
            CaseSpec("tests.api.T", "test_skip", outcome=Outcome.SKIPPED),
            CaseSpec("tests.api.T", "ünïcødé ✓ [param-1]", outcome=Outcome.ERROR),
        ],
    )
    db = report("db", [CaseSpec("tests.db.T", f"test_{i}", time_s=i / 10) for i in range(50)])
    # The same names in another report (and suite): another source and another test.
    again = report("again", [CaseSpec("tests.api.T", "test_ok", file="tests/api.py", line=3)])
    return [api, db, again]


RUN = RunInfo(
    run_id=777,
    run_attempt=1,
    head_sha="c" * 40,
    branch="main",
    event="push",
    conclusion="failure",
    started_at=datetime(2024, 5, 1, tzinfo=UTC),
)


async def ingest(
    sessions: async_sessionmaker[AsyncSession], parts: list[Pairs], run: RunInfo = RUN
) -> list[repo_mod.StoredCounts]:
    """One transaction for the run attempt, one store call per report (as the worker does)."""
    async with sessions.begin() as session:
        assert supports_bulk(session)
        repository = await upsert_repository(session, "acme", "bulk")
        row = await record_run(session, repository.id, run)
        counts = [await store_executions(session, repository.id, row, part) for part in parts]
        await finish_run(session, row, outcome="ingested", files_refused=0)
    return counts


SNAPSHOT = text(
    """
    SELECT wr.run_id, tc.key, tc.key_hash, tc.suite, tc.classname, tc.name, tc.file,
           te.source, te.ordinal, te.outcome, te.duration_s, te.line, te.message, te.details,
           te.system_out, te.system_err, te.id
    FROM test_executions te
    JOIN test_cases tc ON tc.id = te.test_case_id
    JOIN workflow_runs wr ON wr.id = te.workflow_run_id
    ORDER BY wr.run_id, te.source, tc.key, te.ordinal
    """
)


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[Any, ...]]:
    async with sessions() as session:
        return [tuple(r) for r in (await session.execute(SNAPSHOT)).all()]


async def test_the_bulk_path_stores_every_execution_with_counts(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    parts = reports()
    counts = await ingest(sessions, parts)
    assert [c.executions_seen for c in counts] == [len(p) for p in parts] == [7, 50, 1]
    assert [c.executions_inserted for c in counts] == [7, 50, 1]
    assert [c.tests for c in counts] == [5, 50, 1]
    assert [c.failed_tests for c in counts] == [3, 0, 0]  # failed, error, flaky (failed reruns)
    rows = await snapshot(sessions)
    assert len(rows) == 58
    flaky = [r for r in rows if r[5] == "test_flaky"]
    assert [(r[8], r[9]) for r in flaky] == [(0, "failed"), (1, "failed"), (2, "passed")]
    async with sessions() as session:
        cases = (await session.execute(select(TestCase.key, TestCase.key_hash))).all()
    assert len(cases) == 56
    assert all(h == key_hash(k) for k, h in cases)  # the same hash as the generic path


async def test_bulk_and_generic_paths_store_the_same_rows(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = reports()
    await ingest(sessions, parts)
    bulk = [r[1:-1] for r in await snapshot(sessions)]
    monkeypatch.setattr(repo_mod, "supports_bulk", lambda session: False)
    generic_counts = await ingest(sessions, parts, replace(RUN, run_id=778))
    assert [c.executions_inserted for c in generic_counts] == [7, 50, 1]
    rows = await snapshot(sessions)
    generic = [r[1:-1] for r in rows if r[0] == 778]
    assert generic == bulk


async def test_reingesting_the_same_run_attempt_changes_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await ingest(sessions, reports())
    before = await snapshot(sessions)
    again = await ingest(sessions, reports())
    assert [c.executions_inserted for c in again] == [0, 0, 0]
    assert [c.executions_seen for c in again] == [7, 50, 1]
    assert await snapshot(sessions) == before  # same rows, same ids


async def test_a_partial_reingest_loses_nothing_and_a_fuller_one_adds_only_the_missing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    api, db, again = reports()
    await ingest(sessions, [api, db, again])
    before = await snapshot(sessions)
    # One report fewer the second time (e.g. an expired artifact): nothing is deleted.
    counts = await ingest(sessions, [api, again])
    assert [c.executions_inserted for c in counts] == [0, 0]
    assert await snapshot(sessions) == before
    async with sessions() as session:
        totals = (
            await session.execute(
                text("SELECT executions_total, tests_total, tests_failed FROM workflow_runs")
            )
        ).one()
    assert tuple(totals) == (58, 56, 3)  # recounted from what is stored, not from this ingest

    # And a first ingest that missed a report is completed by a later one.
    await ingest(sessions, [api], replace(RUN, run_id=900))
    counts = await ingest(sessions, [api, db, again], replace(RUN, run_id=900))
    assert [c.executions_inserted for c in counts] == [0, 50, 1]
    rows = await snapshot(sessions)
    assert len([r for r in rows if r[0] == 900]) == 58


async def test_a_failed_transaction_leaves_nothing_behind(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            repository = await upsert_repository(session, "acme", "bulk")
            row = await record_run(session, repository.id, RUN)
            await store_executions(session, repository.id, row, reports()[1])
            raise RuntimeError("crash after the COPY")
    assert await snapshot(sessions) == []
    async with sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM test_cases"))).scalar_one() == 0


async def test_odd_values_and_an_empty_report(sessions: async_sessionmaker[AsyncSession]) -> None:
    odd = TestExecution(
        key="k::odd",
        suite="s",
        classname="c",
        name="odd",
        file=None,
        line=2**40,  # beyond a 32-bit column: dropped rather than failing the run
        outcome=Outcome.FAILED,
        duration_s=None,
        ordinal=0,
        message='tab\there, quote " and backslash \\',
        details="x" * 100_000,
        system_out="out",
        system_err=None,
    )
    counts = await ingest(sessions, [[], [("s" * 600, odd)]])
    assert counts[0].executions_seen == 0
    assert counts[1].executions_inserted == 1
    (row,) = await snapshot(sessions)
    assert row[7] == "s" * 512 and row[11] is None and row[12] == odd.message and row[13] == odd.details


async def test_repeated_pairs_on_a_fresh_run_fall_back_to_the_staged_insert(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The direct COPY meets a unique violation: rolled back to its savepoint, the staged
    INSERT ... ON CONFLICT stores each execution once, and the transaction goes on."""
    api, db, _ = reports()
    counts = await ingest(sessions, [api + api, db])
    assert [(c.executions_seen, c.executions_inserted) for c in counts] == [(14, 7), (50, 50)]
    rows = await snapshot(sessions)
    assert len(rows) == 57
    async with sessions() as session:
        total = (await session.execute(text("SELECT executions_total FROM workflow_runs"))).scalar_one()
    assert total == 57
