"""`flakeguard loadtest`: the whole pipeline under load, offline, against this deployment's database
and Redis.

It serves a generated repository from the fake GitHub on loopback, enqueues one `runs:ingest` job
per run, lets an in-process worker host ingest and analyse them (check runs included), and reports
throughput and latency (enqueue to analysis done, from bullmq's own timestamps). Its jobs live under
a Redis prefix of their own and its rows under a repository of their own, deleted at the end, so it
does not touch real queues or data. Loops are bounded by the run count and a timeout.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from sqlalchemy import delete, func, select

from flakeguard.config import Settings
from flakeguard.jobs.names import Priority, QueueName
from flakeguard.jobs.payloads import RepositoryRef, RunMetadata, RunsAnalyzeJob, RunsIngestJob
from flakeguard.jobs.producer import analyze_job_id, ingest_job_id
from flakeguard.services import Services
from flakeguard.store.models import Repository, TestExecution, WorkflowRun
from flakeguard.testing.fake_github import FakeGitHub, populate_demo_repository
from flakeguard.workers.handlers import HANDLERS
from flakeguard.workers.host import WorkerHost

OWNER = "flakeguard-loadtest"
INSTALLATION_ID = 424200


@dataclass(frozen=True, slots=True)
class LoadTestResult:
    runs: int
    tests_per_run: int
    concurrency: int
    executions: int
    seconds: float
    failed_jobs: int
    latencies_s: tuple[float, ...]

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.seconds if self.seconds else 0.0

    @property
    def executions_per_s(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_s:
            return 0.0
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "testsPerRun": self.tests_per_run,
            "concurrency": self.concurrency,
            "executions": self.executions,
            "seconds": round(self.seconds, 3),
            "runsPerSecond": round(self.runs_per_s, 2),
            "executionsPerSecond": round(self.executions_per_s, 1),
            "latencySeconds": {
                "p50": round(self.percentile(0.5), 3),
                "p95": round(self.percentile(0.95), 3),
                "max": round(max(self.latencies_s, default=0.0), 3),
                "mean": round(statistics.fmean(self.latencies_s), 3) if self.latencies_s else 0.0,
            },
            "failedJobs": self.failed_jobs,
        }


async def run_loadtest(
    settings: Settings,
    *,
    runs: int,
    tests_per_run: int,
    concurrency: int,
    timeout_s: float = 600.0,
    redis_url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LoadTestResult:
    repo = f"project-{uuid.uuid4().hex[:8]}"
    with FakeGitHub() as gh:
        run_ids = populate_demo_repository(
            gh,
            owner=OWNER,
            repo=repo,
            installation_id=INSTALLATION_ID,
            runs=runs,
            tests_per_run=tests_per_run,
        )
        own = settings.model_copy(
            update={
                "github_api_url": gh.url,
                "github_app_id": str(gh.app_id),
                "github_private_key": SecretStr(gh.private_key_pem),
                "github_token": None,
                "redis_prefix": f"loadtest{uuid.uuid4().hex[:8]}",
                "polling_enabled": False,
                # Keep every finished job: completion is counted and latency read from them (the
                # queues are obliterated at the end).
                "remove_on_complete": max(settings.remove_on_complete, runs + 1),
                "remove_on_fail": max(settings.remove_on_fail, runs + 1),
            }
        )
        services = Services.create(own, redis_url=redis_url)
        host = WorkerHost(
            services, HANDLERS, [QueueName.RUNS_INGEST, QueueName.RUNS_ANALYZE], concurrency=concurrency
        )
        try:
            await host.start()
            return await _drive(services, repo, run_ids, tests_per_run, concurrency, timeout_s, progress)
        finally:
            await host.close()
            await _forget(services, repo)
            await services.close()


async def _drive(
    services: Services,
    repo: str,
    run_ids: list[int],
    tests_per_run: int,
    concurrency: int,
    timeout_s: float,
    progress: Callable[[int, int], None] | None,
) -> LoadTestResult:
    ref = RepositoryRef(owner=OWNER, repo=repo, installation_id=INSTALLATION_ID)
    jobs = [
        RunsIngestJob(
            workflow_run_id=run_id,
            repository=ref,
            priority=Priority.NORMAL,
            metadata=RunMetadata(run_attempt=1, triggered_by="manual"),
        )
        for run_id in run_ids
    ]
    started = time.monotonic()
    for job in jobs:
        await services.producer.ingest(job)
    ingest_q = services.producer.queue(QueueName.RUNS_INGEST)
    analyze_q = services.producer.queue(QueueName.RUNS_ANALYZE)
    analyze_ids = [
        analyze_job_id(RunsAnalyzeJob(workflow_run_id=r, repository=ref, run_attempt=1)) for r in run_ids
    ]
    deadline = started + timeout_s
    done = failed = 0
    while time.monotonic() < deadline:
        counts = await analyze_q.getJobCounts("completed", "failed")
        ingest_failed = int((await ingest_q.getJobCounts("failed")).get("failed", 0))
        done, failed = int(counts.get("completed", 0)), int(counts.get("failed", 0)) + ingest_failed
        if progress is not None:
            progress(done, len(run_ids))
        if done + failed >= len(run_ids):
            break
        await asyncio.sleep(0.2)
    seconds = time.monotonic() - started
    latencies = []
    for job, job_id in zip(jobs, analyze_ids, strict=True):
        analyze = await analyze_q.getJob(job_id)
        ingest = await ingest_q.getJob(ingest_job_id(job))
        if analyze is not None and ingest is not None and analyze.finishedOn:
            latencies.append((int(analyze.finishedOn) - int(ingest.timestamp)) / 1000)
    async with services.sessions() as session:
        executions = (
            await session.execute(
                select(func.count(TestExecution.id))
                .join(WorkflowRun, WorkflowRun.id == TestExecution.workflow_run_id)
                .join(Repository, Repository.id == WorkflowRun.repository_id)
                .where(Repository.owner == OWNER, Repository.name == repo)
            )
        ).scalar_one()
    return LoadTestResult(
        runs=len(run_ids),
        tests_per_run=tests_per_run,
        concurrency=concurrency,
        executions=int(executions),
        seconds=seconds,
        failed_jobs=failed,
        latencies_s=tuple(latencies),
    )


async def _forget(services: Services, repo: str) -> None:
    """Delete the load test's rows (cascading from its repository) and its Redis keys."""
    async with services.sessions.begin() as session:
        await session.execute(delete(Repository).where(Repository.owner == OWNER, Repository.name == repo))
    for queue in services.producer.queues().values():
        await queue.obliterate(force=True)
