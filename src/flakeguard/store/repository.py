"""Repository functions: every read and write the workers and the API make.

Writes of one run attempt happen in the caller's transaction, in chunks, so memory stays bounded
and a crash leaves nothing half-written. Inserts are `ON CONFLICT DO NOTHING` on natural keys, so
re-ingesting a run attempt changes nothing (no duplicates, no losses).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from flakeguard.model import TestExecution as ParsedExecution
from flakeguard.store.bulk import bulk_store_executions, supports_bulk
from flakeguard.store.models import Repository, TestCase, TestExecution, WorkflowRun, utcnow

T = TypeVar("T")
CHUNK = 5000
MAX_SOURCE = 512


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def insert_for(session: AsyncSession, table: Table | Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports ON CONFLICT on both engines."""
    if session.bind.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: int
    run_attempt: int
    head_sha: str
    branch: str | None
    event: str | None
    conclusion: str | None
    started_at: datetime
    created_at: datetime | None = None
    workflow_name: str | None = None


@dataclass(slots=True)
class StoredCounts:
    executions_seen: int = 0
    executions_inserted: int = 0
    tests: int = 0
    failed_tests: int = 0
    test_case_ids: set[int] = field(default_factory=set)


async def upsert_repository(
    session: AsyncSession,
    owner: str,
    name: str,
    *,
    installation_id: int | None = None,
    default_branch: str | None = None,
    active: bool = True,
) -> Repository:
    """The repository row, created when missing. `active` (polled for GitHub runs) applies to a new
    row only: repositories fed by `flakeguard ingest` are created inactive, and never polled until
    `flakeguard repos add` says they are on GitHub."""
    repo = await get_repository(session, owner, name)
    if repo is None:
        stmt = (
            insert_for(session, Repository.__table__)
            .values(
                owner=owner,
                name=name,
                installation_id=installation_id,
                default_branch=default_branch,
                active=active,
                created_at=utcnow(),
                updated_at=utcnow(),
            )
            .on_conflict_do_nothing()
        )
        await session.execute(stmt)
        repo = await get_repository(session, owner, name)
        assert repo is not None
    changed = False
    if installation_id is not None and repo.installation_id != installation_id:
        repo.installation_id = installation_id
        changed = True
    if default_branch is not None and repo.default_branch != default_branch:
        repo.default_branch = default_branch
        changed = True
    if changed:
        await session.flush()
    return repo


async def get_repository(session: AsyncSession, owner: str, name: str) -> Repository | None:
    result = await session.execute(
        select(Repository).where(Repository.owner == owner, Repository.name == name)
    )
    return result.scalar_one_or_none()


async def record_run(
    session: AsyncSession,
    repository_id: int,
    run: RunInfo,
    producer_metadata: dict[str, Any] | None = None,
) -> int:
    """The workflow_runs row id of this run attempt, created if new, refreshed if known. The metadata
    a producer sent with the job is kept as sent (the latest ingest's)."""
    values: dict[str, Any] = dict(
        repository_id=repository_id,
        run_id=run.run_id,
        run_attempt=run.run_attempt,
        head_sha=run.head_sha,
        branch=run.branch,
        event=run.event,
        conclusion=run.conclusion,
        started_at=run.started_at,
        created_at=run.created_at,
        workflow_name=run.workflow_name,
        ingested_at=utcnow(),
        tests_total=0,
        tests_failed=0,
        executions_total=0,
        files_refused=0,
        outcome="ingesting",
        producer_metadata=producer_metadata,
    )
    stmt = insert_for(session, WorkflowRun.__table__).values(**values)
    stmt = stmt.on_conflict_do_nothing(index_elements=["repository_id", "run_id", "run_attempt"])
    await session.execute(stmt)
    row_id = (
        await session.execute(
            select(WorkflowRun.id).where(
                WorkflowRun.repository_id == repository_id,
                WorkflowRun.run_id == run.run_id,
                WorkflowRun.run_attempt == run.run_attempt,
            )
        )
    ).scalar_one()
    await session.execute(
        update(WorkflowRun)
        .where(WorkflowRun.id == row_id)
        .values(
            conclusion=run.conclusion,
            branch=run.branch,
            event=run.event,
            ingested_at=utcnow(),
            **({"producer_metadata": producer_metadata} if producer_metadata is not None else {}),
        )
    )
    return int(row_id)


async def ensure_test_cases(
    session: AsyncSession, repository_id: int, executions: Sequence[ParsedExecution]
) -> dict[str, int]:
    """Test case ids by key for these executions, creating the missing test cases."""
    by_hash: dict[str, ParsedExecution] = {}
    for execution in executions:
        by_hash.setdefault(key_hash(execution.key), execution)
    now = utcnow()
    rows = [
        dict(
            repository_id=repository_id,
            key_hash=h,
            key=e.key,
            suite=e.suite,
            classname=e.classname,
            name=e.name,
            file=e.file,
            first_seen_at=now,
        )
        # Sorted: concurrent ingests then lock the same keys in the same order (no deadlocks).
        for h, e in sorted(by_hash.items())
    ]
    if rows:
        stmt = insert_for(session, TestCase.__table__).on_conflict_do_nothing(
            index_elements=["repository_id", "key_hash"]
        )
        await session.execute(stmt, rows)
    ids: dict[str, int] = {}
    hashes = list(by_hash)
    for part in chunked(hashes, 900):
        result = await session.execute(
            select(TestCase.key_hash, TestCase.id).where(
                TestCase.repository_id == repository_id, TestCase.key_hash.in_(part)
            )
        )
        for h, test_id in result.all():
            ids[by_hash[h].key] = int(test_id)
    return ids


async def store_executions(
    session: AsyncSession,
    repository_id: int,
    workflow_run_row_id: int,
    executions: Iterable[tuple[str, ParsedExecution]],
    *,
    chunk_size: int = CHUNK,
) -> StoredCounts:
    """Store (source, execution) pairs of one run attempt; idempotent on (run, test, source, ordinal).

    On PostgreSQL (asyncpg) through COPY and set-based inserts (`flakeguard.store.bulk`); elsewhere
    (SQLite) in chunked multi-row INSERTs."""
    counts = StoredCounts()
    if supports_bulk(session):
        seen, inserted, test_ids, failed_count = await bulk_store_executions(
            session, repository_id, workflow_run_row_id, executions
        )
        counts.executions_seen, counts.executions_inserted = seen, inserted
        counts.test_case_ids, counts.tests, counts.failed_tests = test_ids, len(test_ids), failed_count
        return counts
    failed: set[int] = set()
    for part in chunked(executions, chunk_size):
        ids = await ensure_test_cases(session, repository_id, [e for _, e in part])
        rows = []
        for source, e in part:
            test_id = ids[e.key]
            counts.test_case_ids.add(test_id)
            if e.outcome.is_failure:
                failed.add(test_id)
            rows.append(
                dict(
                    workflow_run_id=workflow_run_row_id,
                    test_case_id=test_id,
                    source=source[:MAX_SOURCE],
                    ordinal=e.ordinal,
                    outcome=e.outcome.value,
                    duration_s=e.duration_s,
                    line=e.line,
                    message=e.message,
                    details=e.details,
                    system_out=e.system_out,
                    system_err=e.system_err,
                )
            )
        counts.executions_seen += len(rows)
        stmt = (
            insert_for(session, TestExecution.__table__)
            .on_conflict_do_nothing(index_elements=["workflow_run_id", "test_case_id", "source", "ordinal"])
            .returning(TestExecution.__table__.c.id)
        )
        # RETURNING lists only the rows inserted; executemany's rowcount is not reliable across drivers.
        result = await session.execute(stmt, rows)
        counts.executions_inserted += len(result.all())
    counts.tests = len(counts.test_case_ids)
    counts.failed_tests = len(failed)
    return counts


async def lock_for_analysis(session: AsyncSession, owner: str, name: str) -> None:
    """Make the analyses of one repository take turns across processes (PostgreSQL: FOR NO KEY UPDATE
    on its row, held to the end of the transaction; later statements see what committed while it
    waited; ingests, whose foreign keys take FOR KEY SHARE, are not held up).

    An analysis reads the repository's histories, then writes every test's result: two at once (two
    runs ingested together) could end with the one that read less writing last, and a test stayed
    at 24 of its 30 executions until the next run. On SQLite nothing is taken here: its one writer
    lock held through an analysis stalled concurrent ingests up to the busy timeout, and SQLite
    serves one process (`flakeguard up`), whose analyses take turns in memory
    (`Services.analysis_turn`)."""
    if session.bind.dialect.name != "postgresql":
        return
    await session.execute(
        select(Repository.id)
        .where(Repository.owner == owner, Repository.name == name)
        .with_for_update(key_share=True)
    )


async def upsert_rows(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]], key: list[str]
) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE every other column: last writer wins, no duplicate-key race."""
    if not rows:
        return
    stmt = insert_for(session, table)
    columns = [c for c in rows[0] if c not in key]
    stmt = stmt.on_conflict_do_update(index_elements=key, set_={c: stmt.excluded[c] for c in columns})
    await session.execute(stmt, rows)


async def finish_run(
    session: AsyncSession, workflow_run_row_id: int, *, outcome: str, files_refused: int
) -> tuple[int, int, int]:
    """Recount the run attempt's totals from what is stored (right even after a partial re-ingest)."""
    totals = (
        await session.execute(
            select(
                func.count(TestExecution.id),
                func.count(func.distinct(TestExecution.test_case_id)),
            ).where(TestExecution.workflow_run_id == workflow_run_row_id)
        )
    ).one()
    failed = (
        await session.execute(
            select(func.count(func.distinct(TestExecution.test_case_id))).where(
                TestExecution.workflow_run_id == workflow_run_row_id,
                TestExecution.outcome.in_(("failed", "error")),
            )
        )
    ).scalar_one()
    await session.execute(
        update(WorkflowRun)
        .where(WorkflowRun.id == workflow_run_row_id)
        .values(
            executions_total=totals[0],
            tests_total=totals[1],
            tests_failed=failed,
            files_refused=files_refused,
            outcome=outcome,
        )
    )
    return int(totals[1]), int(failed), int(totals[0])


def insert_ignoring_conflicts(
    session: AsyncSession, table: Table | Any, index_elements: list[str]
) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT (index_elements) DO NOTHING on either engine."""
    return insert_for(session, table).on_conflict_do_nothing(index_elements=index_elements)
