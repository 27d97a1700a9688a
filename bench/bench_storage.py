"""Storage benchmark (not a test): executions/s stored in PostgreSQL; figures go to docs/PERFORMANCE.md.

    .venv/bin/python bench/bench_storage.py [--executions 200000] [--repeat 3] [--skip-generic]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Creates its own database (`flakeguard_bench_<pid>`, migrated with flakeguard.store.migrate.upgrade,
dropped at the end). The rows are one run attempt parsed from a generated ~100 MB Surefire-style
report (`write_large_report`: 5% failures with 64-frame stack traces, 10% with system-out). Each
round, side by side:

* ours, fresh tests: `store_executions` for a new run of a new repository (every test case created),
  in one transaction, commit included;
* ours, known tests: the same executions as a new run of the same repository (test cases exist);
* raw COPY: the same rows, test case ids already known, `copy_records_to_table` straight into
  `test_executions` for a new run (same table: same indexes, unique constraint and foreign keys),
  commit included — the floor;
* (first round only, unless --skip-generic) the generic multi-row INSERT path that SQLite uses and
  PostgreSQL used before the COPY path, for a before/after.

Rounds are interleaved so that load from other processes hits every variant alike; the best of
`--repeat` is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from _common import machine
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flakeguard.junit import parse_report
from flakeguard.model import TestExecution
from flakeguard.store import repository as repo_mod
from flakeguard.store.bulk import EXECUTION_COLUMNS, raw_connection
from flakeguard.store.db import create_engine, session_factory
from flakeguard.store.migrate import upgrade
from flakeguard.store.repository import RunInfo, key_hash, record_run, store_executions, upsert_repository
from flakeguard.testing.reports import write_large_report

Pairs = list[tuple[str, TestExecution]]
RUN = RunInfo(
    run_id=1,
    run_attempt=1,
    head_sha="a" * 40,
    branch="main",
    event="push",
    conclusion="failure",
    started_at=datetime(2024, 5, 1, tzinfo=UTC),
)


def generate(executions: int) -> Pairs:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.xml"
        with path.open("wb") as f:
            size = write_large_report(f, executions)
        with path.open("rb") as f:
            pairs = [("bench-results!report.xml", e) for e in parse_report(f, source="bench")]
    print(f"rows: {len(pairs)} executions parsed from a {size / 1e6:.1f} MB generated report")
    return pairs


async def timed(fn: Callable[[], Awaitable[int]]) -> tuple[float, int]:
    started = time.perf_counter()
    n = await fn()
    return time.perf_counter() - started, n


class Bench:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], pairs: Pairs) -> None:
        self.sessions = sessions
        self.pairs = pairs
        self.next_run = 1

    async def new_run(self, repo: str) -> tuple[int, int]:
        async with self.sessions.begin() as session:
            repository = await upsert_repository(session, "bench", repo)
            row = await record_run(session, repository.id, replace(RUN, run_id=self.next_run))
        self.next_run += 1
        return repository.id, row

    async def ours(self, repo: str) -> tuple[float, int]:
        repository_id, row = await self.new_run(repo)

        async def go() -> int:
            async with self.sessions.begin() as session:
                counts = await store_executions(session, repository_id, row, self.pairs)
            return counts.executions_inserted

        return await timed(go)

    async def raw_copy(self, repo: str) -> tuple[float, int]:
        repository_id, row = await self.new_run(repo)
        async with self.sessions() as session:
            result = await session.execute(
                text("SELECT key_hash, id FROM test_cases WHERE repository_id = :r"), {"r": repository_id}
            )
            ids: dict[str, int] = {str(h): int(i) for h, i in result.all()}
        by_key = {e.key: ids[key_hash(e.key)] for _, e in self.pairs}
        records = [
            (
                row,
                by_key[e.key],
                source,
                e.ordinal,
                e.outcome.value,
                e.duration_s,
                e.line,
                e.message,
                e.details,
                e.system_out,
                e.system_err,
            )
            for source, e in self.pairs
        ]  # built before the clock starts: the floor is the database's own cost

        async def go() -> int:
            async with self.sessions.begin() as session:
                await session.execute(text("SELECT 1"))  # opens the transaction, as ours does
                conn = await raw_connection(session)
                await conn.copy_records_to_table(
                    "test_executions", records=records, columns=EXECUTION_COLUMNS
                )
            return len(records)

        return await timed(go)

    async def generic(self, repo: str) -> tuple[float, int]:
        original = vars(repo_mod)["supports_bulk"]
        setattr(repo_mod, "supports_bulk", lambda session: False)  # noqa: B010
        try:
            return await self.ours(repo)
        finally:
            setattr(repo_mod, "supports_bulk", original)  # noqa: B010


async def main_async(args: argparse.Namespace) -> None:
    base, _, _ = args.admin_url.rpartition("/")
    name = f"flakeguard_bench_{os.getpid()}"
    admin = await asyncpg.connect(args.admin_url)
    server = str(await admin.fetchval("SHOW server_version")).split()[0]
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://")
    print(f"machine: {machine(f'asyncpg {asyncpg.__version__}', f'PostgreSQL {server}')}")
    engine = create_engine(url)
    try:
        await asyncio.to_thread(upgrade, url)
        pairs = generate(args.executions)
        bench = Bench(session_factory(engine), pairs)
        best: dict[str, float] = {}
        for round_no in range(args.repeat):
            repo = f"fresh{round_no}"
            variants: list[tuple[str, Callable[[str], Awaitable[tuple[float, int]]], str]] = [
                ("ours, fresh tests", bench.ours, repo),
                ("ours, known tests", bench.ours, repo),
                ("raw COPY", bench.raw_copy, repo),
            ]
            if round_no == 0 and not args.skip_generic:
                variants.append(("generic INSERT (before)", bench.generic, f"generic{round_no}"))
            for label, fn, on_repo in variants:
                seconds, inserted = await fn(on_repo)
                assert inserted == len(pairs), (label, inserted)
                best[label] = min(best.get(label, seconds), seconds)
                print(f"  round {round_no + 1}: {label:<24} {seconds:6.2f} s")
        floor = len(pairs) / best["raw COPY"]
        print()
        print(f"{'variant':<26} {'executions/s':>13} {'seconds':>8} {'vs raw COPY':>12}")
        for label, seconds in best.items():
            rate = len(pairs) / seconds
            print(f"{label:<26} {rate:>13,.0f} {seconds:>8.2f} {rate / floor:>12.2f}")
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-generic", action="store_true")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
