"""Server-side render times of the dashboard's heaviest pages (issue 14's target: under 300 ms each).

    .venv/bin/python bench/bench_dashboard.py [--tests 5000] [--runs 30] [--executions 2000] [--renders 60]

Creates a throw-away database `flakeguard_bench_<pid>` on BENCH_DATABASE_URL's server (default
postgresql://postgres@127.0.0.1:5432/postgres), migrates it and fills it with COPY:

* `bench/suite`: `--tests` tests over `--runs` run attempts in the last 15 days (the CI history of
  bench_recompute.py: flaky, broken, fixed, skipped tests, re-runs, in-run retries, one outage);
* `bench/long`: one test with `--executions` executions, one per run (a failure in ~1 of 8, in-run
  retries, varied messages), so its page draws 2,000 cells, groups them and finds their signatures.

Both repositories are scored with `recompute_detailed`. Then each page is requested `--renders` times
through the API app in-process (httpx's ASGI transport: no socket, no browser; every query and the
template rendering are in the time), after one warm-up request (which also computes and caches the
repository's flaky trend). Reported: median and 95th percentile in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import bench_recompute
import httpx
from _common import machine

from flakeguard.cli.database import open_database
from flakeguard.config import Settings
from flakeguard.jobs.payloads import TestsRecomputeJob
from flakeguard.pipeline.recompute import recompute_detailed
from flakeguard.server.app import create_api_app
from flakeguard.services import Services
from flakeguard.store.bulk import EXECUTION_COLUMNS
from flakeguard.store.migrate import upgrade

ADMIN_URL = bench_recompute.ADMIN_URL
RUN_COLUMNS = [
    "id", "repository_id", "run_id", "run_attempt", "head_sha", "branch", "event", "conclusion",
    "workflow_name", "created_at", "started_at", "ingested_at", "tests_total", "tests_failed",
    "executions_total", "files_refused", "outcome",
]  # fmt: skip
MESSAGES = (
    "TimeoutError: waited {n} ms for #cart-total",
    "AssertionError: expected 302, got 500 (request {n})",
    "ConnectionResetError: [Errno 104] Connection reset by peer (port {n})",
)


async def fill_long(url: str, executions: int, now: datetime) -> None:
    """`bench/long`: one test executed once in each of `executions` runs, newest `now`."""
    rng = random.Random(3)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO repositories (id, owner, name, default_branch, active, created_at, updated_at)"
            " VALUES (2, 'bench', 'long', 'main', true, now(), now())"
        )
        first_id = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM workflow_runs")) + 1
        runs, rows = [], []
        for k in range(executions):
            started = now - timedelta(minutes=20 * (executions - k))
            branch = "main" if k % 4 else f"feature-{k % 7}"
            run_row = first_id + k
            runs.append(
                (run_row, 2, 700_000 + k, 1, f"{k // 2:040x}", branch, "push", "success", "ci", started,
                 started, started, 1, 0, 1, 0, "ingested")
            )  # fmt: skip
            if rng.random() < 0.12:
                message = rng.choice(MESSAGES).format(n=rng.randint(1000, 99999))
                rows.append((run_row, 1, "junit.xml", 0, "failed", rng.uniform(0.1, 3.0), message))
                if rng.random() < 0.5:
                    rows.append((run_row, 1, "junit.xml", 1, "passed", rng.uniform(0.1, 3.0), None))
            else:
                rows.append((run_row, 1, "junit.xml", 0, "passed", rng.uniform(0.1, 3.0), None))
        test_id = int(await conn.fetchval("SELECT max(id) FROM test_cases")) + 1
        await conn.execute(
            "INSERT INTO test_cases (id, repository_id, key_hash, key, suite, classname, name, first_seen_at)"
            " VALUES ($1, 2, 'long', $2, 'suite', 'shop.CheckoutTest', 'test_total', now())",
            test_id,
            "suite\x1fshop.CheckoutTest\x1ftest_total\x1f",
        )
        await conn.copy_records_to_table("workflow_runs", records=runs, columns=RUN_COLUMNS)
        await conn.copy_records_to_table(
            "test_executions",
            records=[(r, test_id, *rest) for r, _, *rest in rows],
            columns=(*EXECUTION_COLUMNS[:5], "duration_s", "message"),
        )
        await conn.execute(
            "UPDATE workflow_runs r SET tests_failed = 1 FROM test_executions e"
            " WHERE e.workflow_run_id = r.id AND r.repository_id = 2 AND e.outcome = 'failed'"
        )
        for table in ("workflow_runs", "test_cases", "test_executions"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def score(url: str, repo: str, now: datetime) -> None:
    settings = Settings.model_validate({"DATABASE_URL": url, "LOG_LEVEL": "warn"})
    job = TestsRecomputeJob.model_validate({"repository": {"owner": "bench", "repo": repo}})
    async with open_database(settings) as db:
        await recompute_detailed(db, job, now=now)


async def timed(client: httpx.AsyncClient, path: str, renders: int) -> tuple[list[float], int]:
    first = await client.get(path)
    assert first.status_code == 200, (path, first.status_code, first.text[:500])
    times = []
    for _ in range(renders):
        started = time.perf_counter()
        response = await client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return times, len(first.content)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--executions", type=int, default=2000)
    parser.add_argument("--renders", type=int, default=60)
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    parser.add_argument("--profile", type=int, metavar="PAGE", help="cProfile 10 renders of page PAGE (0-4)")
    args = parser.parse_args()

    now = datetime.now(UTC)
    bench_recompute.NOW = now - timedelta(days=10)  # the suite's runs span the 15 days before this
    name = f"flakeguard_bench_{os.getpid()}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    try:
        await asyncio.to_thread(upgrade, url.replace("postgresql://", "postgresql+asyncpg://"))
        n = await bench_recompute.setup(url, args.tests, args.runs)
        await fill_long(url, args.executions, now)
        await score(url, "suite", now)
        await score(url, "long", now)
        settings = Settings.model_validate({"DATABASE_URL": url, "LOG_LEVEL": "warn", "WEB_PUBLIC": "true"})
        services = Services.create(settings, require_redis=False)
        app = create_api_app(services, None, "bench-token")
        long_test = int(await admin_fetch(url, "SELECT id FROM test_cases WHERE repository_id = 2"))
        pages: list[tuple[str, str]] = [
            (f"repository, {args.tests:,} tests (first 50)", "/repos/bench/suite"),
            (f"repository, {args.tests:,} tests, 500 per page", "/repos/bench/suite?per_page=500"),
            (
                f"repository, {args.tests:,} tests, filtered by name",
                "/repos/bench/suite?q=module7&sort=score",
            ),
            (f"test, {args.executions:,} executions", f"/repos/bench/long/tests/{long_test}"),
            ("overview, both repositories", "/"),
        ]
        results: list[tuple[str, list[float], int]] = []
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                if args.profile is not None:
                    path = pages[args.profile][1]
                    await client.get(path)
                    profiler = cProfile.Profile()
                    profiler.enable()
                    for _ in range(10):
                        await client.get(path)
                    profiler.disable()
                    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
                for label, path in pages:
                    times, size = await timed(client, path, args.renders)
                    results.append((label, times, size))
        finally:
            await services.close()
        version = await admin.fetchval("SHOW server_version")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"machine: {machine('PostgreSQL ' + str(version))}; load average {load}")
        print(
            f"bench/suite: {args.tests:,} tests, {n:,} executions;"
            f" bench/long: 1 test, {args.executions:,} runs"
        )
        print(f"{args.renders} renders per page after one warm-up, in-process (no socket), milliseconds\n")
        print(f"{'page':<50}{'median':>9}{'p95':>9}{'max':>9}{'HTML KiB':>10}")
        for label, times, size in results:
            print(
                f"{label:<50}{statistics.median(times):>9.1f}{p95(times):>9.1f}{max(times):>9.1f}"
                f"{size / 1024:>10.0f}"
            )
    finally:
        if args.keep:
            print(f"database kept: {url}")
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return 0


async def admin_fetch(url: str, sql: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
