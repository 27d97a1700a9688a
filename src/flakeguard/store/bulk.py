"""The fast bulk path for storing executions on PostgreSQL, all in the caller's transaction:

1. the distinct test cases are COPYed into a small staging table, inserted with one set-based
   INSERT ... SELECT ... ON CONFLICT DO NOTHING, and their ids read back;
2. when the run attempt holds nothing yet for these sources (a first ingest: the usual case), the
   executions are COPYed straight into `test_executions`, inside a savepoint; should that meet a
   unique violation after all (a concurrent ingest of the same run, repeated pairs in the input),
   the savepoint is rolled back and step 3 runs instead;
3. otherwise (a re-ingest, in whole or in part) they are COPYed into a staging table and inserted
   with INSERT ... SELECT ... ON CONFLICT DO NOTHING, which counts what was new.

Why: the generic path (chunked multi-row INSERT ... RETURNING through SQLAlchemy, kept for SQLite)
stores ~2,200 executions/s here; COPY in asyncpg's binary format streams tuples, and the test-case
upsert and id lookup are two set-based statements whatever the number of executions. Figures:
docs/PERFORMANCE.md "Storing executions".

The staging tables are temporary tables ``ON COMMIT DROP`` on the session's own connection (the raw
asyncpg connection under SQLAlchemy), so they live exactly as long as the caller's transaction and
are invisible to every other session. A first version staged every execution with its key fields and
joined in SQL: 0.55 of a raw COPY, as the large texts (stack traces, output) were written, TOASTed and
read twice. The key hash is computed here exactly as `flakeguard.store.repository.key_hash` does (a
test pins the equality): PostgreSQL cannot compute it in a generated column (``convert_to`` is not
immutable).

Idempotence is the same as the generic path: test cases conflict on (repository_id, key_hash),
executions on (workflow_run_id, test_case_id, source, ordinal); both DO NOTHING, so re-ingesting a
run attempt, in whole or in part, neither duplicates nor loses a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import sha256
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from flakeguard.model import TestExecution as ParsedExecution

__all__ = ["bulk_store_executions", "raw_connection", "supports_bulk"]

CASES = "fg_stage_test_cases"
EXECUTIONS = "fg_stage_executions"
MAX_SOURCE = 512
_INT4_MAX = 2**31 - 1

EXECUTION_COLUMNS = (
    "workflow_run_id",
    "test_case_id",
    "source",
    "ordinal",
    "outcome",
    "duration_s",
    "line",
    "message",
    "details",
    "system_out",
    "system_err",
)
_CASE_COLUMNS = ("key_hash", "key", "suite", "classname", "name", "file")

_CREATE_CASES = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {CASES} (
    key_hash text NOT NULL,
    key text NOT NULL,
    suite text NOT NULL,
    classname text NOT NULL,
    name text NOT NULL,
    file text
) ON COMMIT DROP
"""

_CREATE_EXECUTIONS = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {EXECUTIONS}
    (LIKE test_executions INCLUDING DEFAULTS EXCLUDING CONSTRAINTS EXCLUDING INDEXES) ON COMMIT DROP
"""

# Sorted by key_hash: concurrent ingests of the same repository lock the same keys in the same order.
_INSERT_CASES = f"""
INSERT INTO test_cases (repository_id, key_hash, key, suite, classname, name, file, first_seen_at)
SELECT $1, key_hash, key, suite, classname, name, file, now() FROM {CASES} ORDER BY key_hash
ON CONFLICT (repository_id, key_hash) DO NOTHING
"""

_CASE_IDS = f"""
SELECT s.key_hash, tc.id FROM {CASES} AS s
JOIN test_cases AS tc ON tc.repository_id = $1 AND tc.key_hash = s.key_hash
"""

_ANY_STORED = """
SELECT EXISTS (SELECT 1 FROM test_executions WHERE workflow_run_id = $1 AND source = ANY($2::text[]))
"""

_INSERT_STAGED = f"""
WITH inserted AS (
    INSERT INTO test_executions ({", ".join(EXECUTION_COLUMNS)})
    SELECT {", ".join(EXECUTION_COLUMNS)} FROM {EXECUTIONS}
    ON CONFLICT (workflow_run_id, test_case_id, source, ordinal) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM inserted
"""


def supports_bulk(session: AsyncSession) -> bool:
    """True when the session runs on PostgreSQL through asyncpg (the only engine with this path)."""
    bind = session.bind
    return bind.dialect.name == "postgresql" and bind.dialect.driver == "asyncpg"


async def raw_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, inside the session's transaction.

    SQLAlchemy's asyncpg adapter opens its transaction lazily, at the first statement it runs; the
    caller must have run one through the session before using the raw connection (we do: the
    staging tables are created through the session)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def _stage(session: AsyncSession, create: str, table: str) -> Any:
    await session.execute(text(create))
    await session.execute(text(f"TRUNCATE {table}"))
    return await raw_connection(session)


async def _test_case_ids(
    session: AsyncSession, repository_id: int, cases: dict[str, ParsedExecution]
) -> dict[str, int]:
    """Test case ids by key, creating the missing test cases."""
    conn = await _stage(session, _CREATE_CASES, CASES)
    hashes = {key: sha256(key.encode("utf-8", "surrogatepass")).hexdigest() for key in cases}
    await conn.copy_records_to_table(
        CASES,
        records=[(hashes[k], k, e.suite, e.classname, e.name, e.file) for k, e in cases.items()],
        columns=_CASE_COLUMNS,
    )
    await conn.execute(_INSERT_CASES, repository_id)
    id_by_hash = {h: int(i) for h, i in await conn.fetch(_CASE_IDS, repository_id)}
    return {key: id_by_hash[h] for key, h in hashes.items()}


def _records(
    pairs: list[tuple[str, ParsedExecution]], run_row: int, ids: dict[str, int]
) -> list[tuple[Any, ...]]:
    return [
        (
            run_row,
            ids[e.key],
            source[:MAX_SOURCE],
            e.ordinal,
            e.outcome.value,
            e.duration_s,
            e.line if e.line is None or e.line <= _INT4_MAX else None,
            e.message,
            e.details,
            e.system_out,
            e.system_err,
        )
        for source, e in pairs
    ]


async def bulk_store_executions(
    session: AsyncSession,
    repository_id: int,
    workflow_run_row_id: int,
    executions: Iterable[tuple[str, ParsedExecution]],
) -> tuple[int, int, set[int], int]:
    """Store (source, execution) pairs of one run attempt through COPY.

    Returns (executions seen, executions inserted, ids of the test cases seen, how many of them
    failed or errored here)."""
    pairs = executions if isinstance(executions, list) else list(executions)
    if not pairs:
        return 0, 0, set(), 0
    cases: dict[str, ParsedExecution] = {}
    failed: set[str] = set()
    for _, e in pairs:
        cases.setdefault(e.key, e)
        if e.outcome.is_failure:
            failed.add(e.key)
    ids = await _test_case_ids(session, repository_id, dict(sorted(cases.items())))
    records = _records(pairs, workflow_run_row_id, ids)
    conn = await raw_connection(session)
    sources = sorted({r[2] for r in records})
    inserted: int | None = None
    if not await conn.fetchval(_ANY_STORED, workflow_run_row_id, sources):
        try:
            async with conn.transaction():  # a savepoint in the session's transaction
                await conn.copy_records_to_table(
                    "test_executions", records=records, columns=EXECUTION_COLUMNS
                )
            inserted = len(records)
        except asyncpg.UniqueViolationError:
            inserted = None  # rolled back to the savepoint; the staged path sorts it out
    if inserted is None:
        conn = await _stage(session, _CREATE_EXECUTIONS, EXECUTIONS)
        await conn.copy_records_to_table(EXECUTIONS, records=records, columns=EXECUTION_COLUMNS)
        inserted = int(await conn.fetchval(_INSERT_STAGED))
    return len(pairs), inserted, set(ids.values()), len(failed)
