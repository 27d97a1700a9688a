"""The fast bulk path for storing executions on PostgreSQL: COPY into a staging table, then set-based
INSERT ... SELECT ... ON CONFLICT DO NOTHING into the real tables, all in the caller's transaction.

Why: a multi-row INSERT through SQLAlchemy costs ~15-20 µs per execution in Python (parameter
dicts, per-row binding, RETURNING rows back). COPY in asyncpg's binary format streams tuples at a few
µs each; the de-duplication, the test-case upsert and the id lookup then happen inside PostgreSQL as
two statements, whatever the number of executions. Figures: docs/PERFORMANCE.md "Storing executions".

The staging table is a temporary table ``ON COMMIT DROP`` on the session's own connection (the raw
asyncpg connection under SQLAlchemy), so it lives exactly as long as the caller's transaction and is
invisible to every other session. The key hash is computed here exactly as
`flakeguard.store.repository.key_hash` does (a test pins the equality); PostgreSQL cannot compute it
in a generated column (``convert_to`` is not immutable) and hashing once per row in Python is cheaper
than hashing twice in SQL.

Idempotence is the same as the generic path: test cases conflict on (repository_id, key_hash),
executions on (workflow_run_id, test_case_id, source, ordinal); both DO NOTHING, so re-ingesting a
run attempt, in whole or in part, neither duplicates nor loses a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from hashlib import sha256
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from flakeguard.model import TestExecution as ParsedExecution

__all__ = ["STAGE", "bulk_store_executions", "raw_connection", "supports_bulk"]

STAGE = "fg_stage_executions"
MAX_SOURCE = 512
_INT4_MAX = 2**31 - 1

# Columns as copied, in order.
_STAGE_COLUMNS = (
    "key",
    "suite",
    "classname",
    "name",
    "file",
    "source",
    "ordinal",
    "outcome",
    "duration_s",
    "line",
    "message",
    "details",
    "system_out",
    "system_err",
    "key_hash",
)

_CREATE_STAGE = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} (
    key text NOT NULL,
    suite text NOT NULL,
    classname text NOT NULL,
    name text NOT NULL,
    file text,
    source text NOT NULL,
    ordinal integer NOT NULL,
    outcome text NOT NULL,
    duration_s double precision,
    line integer,
    message text,
    details text,
    system_out text,
    system_err text,
    key_hash text NOT NULL
) ON COMMIT DROP
"""

# Sorted by key_hash: concurrent ingests of the same repository lock the same keys in the same order.
_INSERT_CASES = f"""
INSERT INTO test_cases (repository_id, key_hash, key, suite, classname, name, file, first_seen_at)
SELECT $1, s.key_hash, s.key, s.suite, s.classname, s.name, s.file, now()
FROM (SELECT DISTINCT ON (key_hash) key_hash, key, suite, classname, name, file
      FROM {STAGE} ORDER BY key_hash) AS s
ORDER BY s.key_hash
ON CONFLICT (repository_id, key_hash) DO NOTHING
"""

_INSERT_EXECUTIONS = f"""
WITH inserted AS (
    INSERT INTO test_executions (workflow_run_id, test_case_id, source, ordinal, outcome, duration_s,
                                 line, message, details, system_out, system_err)
    SELECT $2, tc.id, s.source, s.ordinal, s.outcome, s.duration_s, s.line, s.message, s.details,
           s.system_out, s.system_err
    FROM {STAGE} AS s
    JOIN test_cases AS tc ON tc.repository_id = $1 AND tc.key_hash = s.key_hash
    ON CONFLICT (workflow_run_id, test_case_id, source, ordinal) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM inserted
"""

_TEST_CASES_OF_STAGE = f"""
SELECT tc.id, bool_or(s.outcome IN ('failed', 'error'))
FROM {STAGE} AS s
JOIN test_cases AS tc ON tc.repository_id = $1 AND tc.key_hash = s.key_hash
GROUP BY tc.id
"""


def supports_bulk(session: AsyncSession) -> bool:
    """True when the session runs on PostgreSQL through asyncpg (the only engine with this path)."""
    bind = session.bind
    return bind.dialect.name == "postgresql" and bind.dialect.driver == "asyncpg"


async def raw_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, inside the session's transaction.

    SQLAlchemy's asyncpg adapter opens its transaction lazily, at the first statement it runs; the
    caller must have run one through the session before using the raw connection (we do: the
    staging table is created through the session)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


def _records(executions: Iterable[tuple[str, ParsedExecution]], seen: list[int]) -> Iterator[tuple[Any, ...]]:
    n = 0
    for source, e in executions:
        n += 1
        line = e.line
        key = e.key
        yield (
            key,
            e.suite,
            e.classname,
            e.name,
            e.file,
            source[:MAX_SOURCE],
            e.ordinal,
            e.outcome.value,
            e.duration_s,
            line if line is None or line <= _INT4_MAX else None,
            e.message,
            e.details,
            e.system_out,
            e.system_err,
            sha256(key.encode("utf-8", "surrogatepass")).hexdigest(),
        )
    seen.append(n)


async def bulk_store_executions(
    session: AsyncSession,
    repository_id: int,
    workflow_run_row_id: int,
    executions: Iterable[tuple[str, ParsedExecution]],
) -> tuple[int, int, set[int], int]:
    """Store (source, execution) pairs of one run attempt through COPY.

    Returns (executions seen, executions inserted, ids of the test cases seen, how many of them
    failed or errored here). Streams `executions` straight into COPY: nothing is materialized here.
    """
    await session.execute(text(_CREATE_STAGE))
    await session.execute(text(f"TRUNCATE {STAGE}"))
    conn = await raw_connection(session)
    seen: list[int] = []
    await conn.copy_records_to_table(STAGE, records=_records(executions, seen), columns=_STAGE_COLUMNS)
    count = seen[0] if seen else 0
    if count == 0:
        return 0, 0, set(), 0
    await conn.execute(_INSERT_CASES, repository_id)
    inserted = int(await conn.fetchval(_INSERT_EXECUTIONS, repository_id, workflow_run_row_id))
    ids: set[int] = set()
    failed = 0
    for test_id, any_failed in await conn.fetch(_TEST_CASES_OF_STAGE, repository_id):
        ids.add(int(test_id))
        failed += bool(any_failed)
    await conn.execute(f"TRUNCATE {STAGE}")
    return count, inserted, ids, failed
