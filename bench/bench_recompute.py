"""Speed of a full `tests:recompute` against one plain SQL GROUP BY pass over the same rows.

    .venv/bin/python bench/bench_recompute.py [--tests 20000] [--runs 50] [--profile]

Creates a throw-away database `flakeguard_bench_<pid>` on BENCH_DATABASE_URL's server (default
postgresql://postgres@127.0.0.1:5432/postgres), migrates it, fills it with COPY, measures, drops it.

The history is a CI suite as it looks in practice (deterministic, seeded): `--runs` run attempts,
mostly on main with some feature branches and re-run attempts on the same sha, one infrastructure
outage (most tests fail); 88 % healthy tests, 6 % flaky (failure probability 1-50 %, some with in-run
retries), 2 % broken since some run, 2 % broken and fixed, 2 % sometimes skipped. With 20,000 tests and
50 runs that is 1,000,000 executions.

Reported (best of `--repeat`, warm cache):

* `GROUP BY`: `SELECT test_case_id, count(*), count(*) FILTER (failed/error) FROM test_executions
  GROUP BY test_case_id`, fetched to the client;
* `recompute`: `recompute_detailed` over all tests (default batch size 500), writing flakiness_results;
* `recompute, no memo`: the same with the analysis memo disabled (every test analysed), which is the
  worst case of a suite whose every test has a different history.

It also checks that the later recomputes (same `now`) leave every stored result row as the first one
wrote it: a second recompute is a fixed point.

`--analysis-only` needs no database: it builds the same histories in memory (as `pipeline.scoring`
decodes them) and times `analyze_test` over every test's history, no memo, best of `--repeat`, in CPU
seconds of the process (steadier than wall time on a shared machine). That
is the analysis core's own cost per history, the figure to compare before and after a change to
`flakeguard.analysis` (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import os
import pstats
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from _common import machine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flakeguard.analysis import AnalysisConfig, analyze_test
from flakeguard.config import Settings
from flakeguard.jobs.payloads import TestsRecomputeJob
from flakeguard.model import Outcome
from flakeguard.pipeline import recompute as recompute_module
from flakeguard.pipeline.recompute import recompute_detailed
from flakeguard.pipeline.scoring import (
    AnalysisMemo,
    RunCache,
    RunContext,
    TestHistory,
    _Computed,
    _Prior,
    encode,
    observations_of,
)
from flakeguard.store.db import create_engine, session_factory
from flakeguard.store.migrate import upgrade

ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2024, 7, 1, tzinfo=UTC)


@dataclass
class Db:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]


class NoMemo(AnalysisMemo):
    def analyse(self, history: TestHistory | None, prior: _Prior | None, runs: RunCache) -> _Computed:
        self.entries.clear()
        return super().analyse(history, prior, runs)


def _url(database: str) -> str:
    return f"{ADMIN_URL.rpartition('/')[0]}/{database}"


def generate(
    tests: int, runs: int, seed: int = 7
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows for workflow_runs, test_cases and test_executions."""
    rng = random.Random(seed)
    run_rows: list[tuple[Any, ...]] = []
    start = NOW - timedelta(days=25)
    sha = 0
    for index in range(runs):
        rerun = index > 0 and rng.random() < 0.1 and run_rows[-1][3] == 1
        if rerun:
            prev = run_rows[-1]
            run_rows.append((index + 1, prev[1], 2, prev[3], prev[4], start + timedelta(hours=12 * index)))
            continue
        sha += 1
        branch = "main" if rng.random() < 0.7 else f"feature-{rng.randint(1, 5)}"
        run_rows.append(
            (index + 1, 900_000 + index, 1, f"{sha:040x}", branch, start + timedelta(hours=12 * index))
        )
    # (id, run_id, attempt, sha, branch, started) -> the table's columns
    workflow_runs = [
        (
            rid,
            1,
            run_id,
            attempt,
            sha_,
            branch,
            "push",
            "success",
            "ci",
            started,
            started,
            started,
            0,
            0,
            0,
            0,
            "ingested",
        )
        for rid, run_id, attempt, sha_, branch, started in [
            (r[0], r[1], r[2], r[3], r[4], r[5]) for r in run_rows
        ]
    ]
    outage = runs // 2
    test_cases = []
    executions: list[tuple[Any, ...]] = []
    for t in range(1, tests + 1):
        classname = f"com.acme.module{t % 97}.Class{t % 1013}Test"
        name = f"test_case_{t}"
        key = f"suite\x1f{classname}\x1f{name}\x1f"
        test_cases.append((t, 1, f"{t:064x}", key, "suite", classname, name, None, NOW))
        kind = rng.random()
        p = rng.uniform(0.01, 0.5)
        break_at = rng.randrange(runs // 3, runs)
        fix_at = break_at + rng.randrange(2, 6)
        retries = rng.random() < 0.5
        for r in range(runs):
            rid = r + 1
            if r == outage and rng.random() < 0.9:
                executions.append((rid, t, "junit.xml", 0, "failed"))
                continue
            if kind < 0.88:
                outcome = "passed"
            elif kind < 0.94:
                outcome = "failed" if rng.random() < p else "passed"
                if outcome == "failed" and retries:
                    executions.append((rid, t, "junit.xml", 0, "failed"))
                    executions.append((rid, t, "junit.xml", 1, "passed"))
                    continue
            elif kind < 0.96:
                outcome = "failed" if r >= break_at else "passed"
            elif kind < 0.98:
                outcome = "failed" if break_at <= r < fix_at else "passed"
            else:
                outcome = "skipped" if rng.random() < 0.3 else "passed"
            executions.append((rid, t, "junit.xml", 0, outcome))
    return workflow_runs, test_cases, executions


async def setup(url: str, tests: int, runs: int) -> int:
    workflow_runs, test_cases, executions = generate(tests, runs)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO repositories (id, owner, name, default_branch, active, created_at, updated_at)"
            " VALUES (1, 'bench', 'suite', 'main', true, now(), now())"
        )
        await conn.copy_records_to_table(
            "workflow_runs",
            records=workflow_runs,
            columns=[
                "id",
                "repository_id",
                "run_id",
                "run_attempt",
                "head_sha",
                "branch",
                "event",
                "conclusion",
                "workflow_name",
                "created_at",
                "started_at",
                "ingested_at",
                "tests_total",
                "tests_failed",
                "executions_total",
                "files_refused",
                "outcome",
            ],
        )
        await conn.copy_records_to_table(
            "test_cases",
            records=test_cases,
            columns=[
                "id",
                "repository_id",
                "key_hash",
                "key",
                "suite",
                "classname",
                "name",
                "file",
                "first_seen_at",
            ],
        )
        await conn.copy_records_to_table(
            "test_executions",
            records=executions,
            columns=["workflow_run_id", "test_case_id", "source", "ordinal", "outcome"],
        )
        await conn.execute("""
            UPDATE workflow_runs r SET tests_total = s.total, tests_failed = s.failed, executions_total = s.n
            FROM (SELECT workflow_run_id, count(DISTINCT test_case_id) AS total, count(*) AS n,
                         count(DISTINCT test_case_id) FILTER (WHERE outcome IN ('failed', 'error')) AS failed
                  FROM test_executions GROUP BY workflow_run_id) s
            WHERE s.workflow_run_id = r.id""")
        for table in ("repositories", "workflow_runs", "test_cases", "test_executions"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return len(executions)


async def group_by(url: str) -> float:
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        rows = await conn.fetch(
            "SELECT test_case_id, count(*), count(*) FILTER (WHERE outcome IN ('failed', 'error'))"
            " FROM test_executions GROUP BY test_case_id"
        )
        elapsed = time.perf_counter() - started
        assert rows
        return elapsed
    finally:
        await conn.close()


async def results_digest(url: str) -> str:
    """A digest of every stored result row (a second recompute must leave them identical)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT * FROM flakiness_results ORDER BY test_case_id")
        return hashlib.sha256(repr([tuple(row) for row in rows]).encode()).hexdigest()[:16]
    finally:
        await conn.close()


async def run_recompute(url: str, *, memo: bool, batch_size: int) -> tuple[float, Any]:
    settings = Settings.model_validate({"DATABASE_URL": url, "LOG_LEVEL": "warn"})
    engine = create_engine(settings.async_database_url)
    db = Db(settings, session_factory(engine))
    job = TestsRecomputeJob.model_validate(
        {"repository": {"owner": "bench", "repo": "suite"}, "batchSize": batch_size}
    )
    original = AnalysisMemo
    if not memo:
        setattr(recompute_module, "AnalysisMemo", NoMemo)  # noqa: B010
    try:
        started = time.perf_counter()
        result = await recompute_detailed(db, job, now=NOW)
        elapsed = time.perf_counter() - started
    finally:
        setattr(recompute_module, "AnalysisMemo", original)  # noqa: B010
        await engine.dispose()
    return elapsed, result


def analysis_only(tests: int, runs: int, repeat: int) -> None:
    """Time `analyze_test` over every generated history, in memory (no database, no memo)."""
    run_rows, _, executions = generate(tests, runs)
    failing: dict[int, set[int]] = {}
    seen: dict[int, set[int]] = {}
    codes: dict[int, list[int]] = {}
    for rid, test, _source, ordinal, outcome in executions:
        seen.setdefault(rid, set()).add(test)
        if outcome in ("failed", "error"):
            failing.setdefault(rid, set()).add(test)
        codes.setdefault(test, []).append(encode(rid, ordinal, Outcome(outcome)))
    contexts = {
        row[0]: RunContext(
            started_at=row[9],
            head_sha=row[4],
            branch=row[5],
            run_id=row[2],
            run_attempt=row[3],
            failure_share=len(failing.get(row[0], ())) / max(1, len(seen.get(row[0], ()))),
        )
        for row in run_rows
    }
    cache: dict[int, Any] = {}
    histories = [observations_of(sorted(c), contexts, cache) for c in codes.values()]
    config = AnalysisConfig()
    timings = []
    for _ in range(repeat):
        # CPU time of this process: on a shared machine, wall time mostly measures the neighbours
        started = time.process_time()
        for observations in histories:
            analyze_test(observations, config, None, NOW)
        timings.append(time.process_time() - started)
    best = min(timings)
    n = sum(len(h) for h in histories)
    print(f"machine: {machine()}")
    print(f"analyze_test over {len(histories):,} histories ({n:,} executions), no memo, best of {repeat}:")
    print(f"  {best:.3f} s CPU, {best / len(histories) * 1e6:.1f} µs per history")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="cProfile one recompute (top 25 by cumtime)")
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    parser.add_argument(
        "--analysis-only", action="store_true", help="time analyze_test in memory, no database"
    )
    args = parser.parse_args()
    if args.analysis_only:
        analysis_only(args.tests, args.runs, args.repeat)
        return 0

    name = f"flakeguard_bench_{os.getpid()}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = _url(name)
    try:
        await asyncio.to_thread(upgrade, url.replace("postgresql://", "postgresql+asyncpg://"))
        started = time.perf_counter()
        n = await setup(url, args.tests, args.runs)
        print(
            f"generated and copied {n:,} executions of {args.tests:,} tests"
            f" in {time.perf_counter() - started:.1f} s"
        )

        base = min([await group_by(url) for _ in range(args.repeat)])
        first, result = await run_recompute(url, memo=True, batch_size=args.batch_size)
        after_first = await results_digest(url)
        warm = min(
            [(await run_recompute(url, memo=True, batch_size=args.batch_size))[0] for _ in range(args.repeat)]
        )
        cold = min(
            [
                (await run_recompute(url, memo=False, batch_size=args.batch_size))[0]
                for _ in range(max(1, args.repeat - 2))
            ]
        )
        statuses = dict(sorted(result.summary.by_status.items()))
        fixed_point = "yes" if await results_digest(url) == after_first else "NO"

        print(f"\nmachine: {machine('PostgreSQL ' + str(await admin.fetchval('SHOW server_version')))}")
        print(f"executions {n:,}  tests {args.tests:,}  batch size {args.batch_size}  statuses {statuses}")
        print(f"analyses computed {result.analyses_computed:,}, reused {result.analyses_reused:,}")
        print(f"stored results after the later recomputes identical to the first's: {fixed_point}\n")
        print(f"{'pass':<38}{'seconds':>9}{'x GROUP BY':>12}")
        for label, value in (
            ("plain GROUP BY test_case_id", base),
            ("recompute, first (inserts results)", first),
            ("recompute, again (updates results)", warm),
            ("recompute, no memo (worst case)", cold),
        ):
            print(f"{label:<38}{value:>9.3f}{value / base:>12.2f}")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await run_recompute(url, memo=True, batch_size=args.batch_size)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        if args.keep:
            print(f"database kept: {url}")
    finally:
        if not args.keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
