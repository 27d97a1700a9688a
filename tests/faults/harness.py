"""The world of one fault scenario: its own redis-server and database, the fake GitHub serving a
generated repository, `flakeguard worker` processes, and a tally against independently known truth.

Truth comes from the fake's repository (every run has exactly `tests_per_run` test executions), not
from anything the worker reports: the tally counts the rows in PostgreSQL per run and the jobs in
each state in Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from flakeguard.jobs.connection import RedisTarget
from flakeguard.jobs.names import QueueName
from flakeguard.jobs.payloads import RepositoryRef, RunsIngestJob
from flakeguard.jobs.producer import JobProducer
from flakeguard.jobs.retry import RetryPolicy
from flakeguard.testing.fake_github import FakeGitHub, Fault, populate_demo_repository
from tests.conftest import migrated_database
from tests.faults.redis_servers import RedisServer
from tests.integration.helpers import ROOT, free_port, process_env

OWNER, REPO, INSTALLATION = "acme", "faulty", 67890
FIRST_RUN_ID = 50_000


def own_database() -> AbstractContextManager[str]:
    """A fresh, migrated PostgreSQL database for one scenario; dropped afterwards."""
    return migrated_database(f"flakeguard_fault_{uuid.uuid4().hex[:10]}")


def populate(gh: FakeGitHub, runs: int, tests_per_run: int) -> list[int]:
    return populate_demo_repository(
        gh,
        owner=OWNER,
        repo=REPO,
        installation_id=INSTALLATION,
        runs=runs,
        tests_per_run=tests_per_run,
        first_run_id=FIRST_RUN_ID,
    )


def worker_env(redis_url: str, database_url: str, gh: FakeGitHub, **extra: str) -> dict[str, str]:
    return process_env(
        {
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "GITHUB_API_URL": gh.url,
            "GITHUB_APP_ID": str(gh.app_id),
            "GITHUB_PRIVATE_KEY": gh.private_key_pem,
            "POLLING_ENABLED": "false",
            "LOG_LEVEL": "info",
            "WORKER_CONCURRENCY": "5",
            "REMOVE_ON_COMPLETE": "1000",
            "REMOVE_ON_FAIL": "1000",
            # Stalled recovery in seconds, not a minute: lock 8 s, checked every second.
            "QUEUE_STALLED_JOB_TIMEOUT_MS": "8000",
            "QUEUE_STALLED_CHECK_INTERVAL_MS": "1000",
            "OUTAGE_RETRY_DELAY_MS": "1000",
            **extra,
        }
    )


class WorkerProcess:
    """`flakeguard worker` as a subprocess with its own health port, log file and worker name."""

    def __init__(self, env: Mapping[str, str], workdir: Path, name: str) -> None:
        self.name = name
        self.health_port = free_port()
        self.env = {
            **env,
            "HEALTH_CHECK_PORT": str(self.health_port),
            "METRICS_PORT": str(free_port()),
            "WORKER_NAME": name,
        }
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flakeguard", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def health(self, path: str = "/health/ready") -> int | None:
        try:
            return httpx.get(f"http://127.0.0.1:{self.health_port}{path}", timeout=5).status_code
        except httpx.HTTPError:
            return None

    async def wait_ready(self, within: float = 120) -> None:
        await until(lambda: self.health() == 200, within, f"{self.name} ready", self)

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_exit(self, within: float) -> int:
        assert self.process is not None
        await until(
            lambda: self.process is not None and self.process.poll() is not None,
            within,
            f"{self.name} to exit",
            self,
        )
        return int(self.process.returncode)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return lines

    def stop(self) -> None:
        if self.alive():
            self.signal(signal.SIGKILL)
            assert self.process is not None
            self.process.wait(10)


async def until(
    predicate: Callable[[], Any] | Callable[[], Awaitable[Any]],
    within: float,
    what: str,
    *workers: WorkerProcess,
    interval: float = 0.2,
) -> Any:
    """Polls `predicate` (sync or async) until it returns something truthy; fails naming `what`."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            last = value
            if value:
                return value
        except Exception as exc:  # a dependency we broke on purpose may refuse the check itself
            last = exc
        await asyncio.sleep(interval)
    logs = "\n".join(f"--- {w.name} ---\n{w.log()[-3000:]}" for w in workers)
    raise AssertionError(f"timed out after {within:.0f} s waiting for {what} (last: {last!r})\n{logs}")


class Chaos:
    """For every request the fake receives, arms a fault for a later one with probability `rate`
    (seeded): about `rate` of the repository and artifact requests fail, in a reproducible mix."""

    FAULTS = (
        ("/repos/*", Fault.server_error(500)),
        ("/repos/*", Fault.server_error(502)),
        ("/repos/*", Fault.server_error(503)),
        ("/repos/*", Fault.reset()),
        ("/_blob/*", Fault.reset()),
        ("/_blob/*", Fault.server_error(503)),
        ("POST /repos/*/check-runs", Fault.lost_response(502)),
        ("PATCH /repos/*/check-runs/*", Fault.lost_response(504)),
    )

    def __init__(self, gh: FakeGitHub, rate: float, seed: int = 8) -> None:
        self.gh = gh
        self.rate = rate
        self.rng = random.Random(seed)
        self.armed: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Chaos:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.gh.clear_faults()

    def _run(self) -> None:
        seen = 0
        while not self._stop.wait(0.01):
            total = len(self.gh.requests)
            for _ in range(total - seen):
                roll = self.rng.random()
                if roll < 0.02:
                    self.gh.inject("/repos/*", Fault.secondary_limit(retry_after=1))
                    self.armed["secondary_limit"] += 1
                elif roll < self.rate:
                    pattern, fault = self.rng.choice(self.FAULTS)
                    self.gh.inject(pattern, fault)
                    self.armed[fault.kind] += 1
            seen = total


@dataclass
class Jobs:
    """The queues of one scenario, seen from outside the workers."""

    redis_url: str
    prefix: str = "bull"
    producer: JobProducer = field(init=False)

    def __post_init__(self) -> None:
        self.producer = JobProducer(
            RedisTarget(url=self.redis_url, prefix=self.prefix),
            RetryPolicy(),
            keep_completed=1000,
            keep_failed=1000,
        )

    async def enqueue_ingests(self, run_ids: list[int]) -> list[str]:
        ids = []
        for run_id in run_ids:
            job = RunsIngestJob(
                workflow_run_id=run_id,
                repository=RepositoryRef(owner=OWNER, repo=REPO, installation_id=INSTALLATION),
            )
            ids.append(str((await self.producer.ingest(job)).id))
        return ids

    async def counts(self, queue: QueueName) -> dict[str, int]:
        return (await self.producer.counts())[queue.value]

    async def state(self, queue: QueueName, job_id: str) -> str:
        return str(await self.producer.queue(queue).getJobState(job_id))

    async def active(self, queue: QueueName) -> set[str]:
        jobs = await self.producer.queue(queue).getJobs(["active"], 0, -1)
        return {str(job.id) for job in jobs if job is not None}

    async def job_fields(self, queue: QueueName, job_id: str) -> dict[str, str]:
        q = self.producer.queue(queue)
        raw = await q.client.hgetall(q.toKey(job_id))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def all_finished(self) -> bool:
        """Nothing waiting, active, delayed or prioritized on any queue."""
        for counts in (await self.producer.counts()).values():
            pending = sum(counts[s] for s in ("waiting", "active", "delayed", "prioritized", "paused"))
            if pending:
                return False
        return True

    async def failed(self) -> dict[str, list[tuple[str, str]]]:
        result: dict[str, list[tuple[str, str]]] = {}
        for name, queue in self.producer.queues().items():
            jobs = [j for j in await queue.getJobs(["failed"], 0, -1) if j is not None]
            if jobs:
                result[name.value] = [(str(j.id), str(j.failedReason)) for j in jobs]
        return result

    async def close(self) -> None:
        await self.producer.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def stored_executions(database_url: str) -> dict[int, int]:
    """Executions stored per workflow run id (every attempt of a run together)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT wr.run_id, count(te.id) AS n FROM workflow_runs wr "
            "LEFT JOIN test_executions te ON te.workflow_run_id = wr.id GROUP BY wr.run_id"
        )
    finally:
        await conn.close()
    return {int(r["run_id"]): int(r["n"]) for r in rows}


@dataclass(frozen=True)
class Tally:
    lost: int
    duplicated: int
    dead_lettered: dict[str, list[tuple[str, str]]]
    stuck: dict[str, dict[str, int]]

    def assert_clean(self, allowed_dead: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        dead = {
            queue: [(job_id, reason) for job_id, reason in jobs if job_id not in allowed_dead]
            for queue, jobs in self.dead_lettered.items()
        }
        dead = {q: j for q, j in dead.items() if j}
        assert (self.lost, self.duplicated, dead, self.stuck) == (0, 0, {}, {}), self


async def tally(jobs: Jobs, database_url: str, run_ids: list[int], tests_per_run: int) -> Tally:
    stored = await stored_executions(database_url)
    lost = sum(max(0, tests_per_run - stored.get(r, 0)) for r in run_ids)
    duplicated = sum(max(0, stored.get(r, 0) - tests_per_run) for r in run_ids)
    stuck = {}
    for queue, counts in (await jobs.producer.counts()).items():
        pending = {s: counts[s] for s in ("waiting", "active", "delayed", "prioritized") if counts[s]}
        if pending:
            stuck[queue] = pending
    return Tally(lost, duplicated, await jobs.failed(), stuck)


@dataclass
class World:
    """One scenario's own Redis, database, fake GitHub, queues and worker processes."""

    tmp: Path
    redis: RedisServer
    database: str
    gh: FakeGitHub
    jobs: Jobs
    workers: list[WorkerProcess]

    def env(self, database: str | None = None, **settings: str) -> dict[str, str]:
        return worker_env(self.redis.url, database or self.database, self.gh, **settings)

    def worker(self, name: str, env: dict[str, str] | None = None) -> WorkerProcess:
        """Starts `flakeguard worker` (killed at the end of the test whatever happens)."""
        process = WorkerProcess(env or self.env(), self.tmp, name).start()
        self.workers.append(process)
        return process
