"""Enqueue helpers: the one place that turns payloads into bullmq jobs with ids and options.

Job ids are legal for Node BullMQ too (no ':', never integer-like), and derived from the work they
name, so the same run attempt enqueued by a webhook and by polling is one job (jobId dedup).

Every payload leaves with a `correlationId`: its own when the caller set one, else the one of the
work being handled (a job, a webhook delivery: see `flakeguard.logging.current_correlation_id`),
else a new one: work entering here (CLI, API) starts a chain.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from bullmq import Job, Queue

from flakeguard.jobs.connection import RedisTarget
from flakeguard.jobs.names import ALL_QUEUES, QueueName
from flakeguard.jobs.payloads import (
    PollingJob,
    RunsAnalyzeJob,
    RunsIngestJob,
    TestsRecomputeJob,
    WireModel,
)
from flakeguard.jobs.retry import RetryPolicy
from flakeguard.logging import current_correlation_id, new_correlation_id

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_id(*parts: object) -> str:
    """A job id from parts: ':' and other separators become '-', and it never looks like an integer."""
    text = "-".join(_UNSAFE.sub("-", str(p)) for p in parts if p is not None and str(p) != "")
    return text if not text.isdigit() else f"job-{text}"


def with_correlation_id(payload: WireModel) -> WireModel:
    if "correlation_id" not in type(payload).model_fields or getattr(payload, "correlation_id", None):
        return payload
    return payload.model_copy(update={"correlation_id": current_correlation_id() or new_correlation_id()})


def ingest_job_id(job: RunsIngestJob) -> str:
    attempt = job.metadata.run_attempt if job.metadata and job.metadata.run_attempt else None
    return safe_id("ingest", job.repository.owner, job.repository.repo, job.workflow_run_id, attempt)


def analyze_job_id(job: RunsAnalyzeJob) -> str:
    return safe_id("analyze", job.repository.owner, job.repository.repo, job.workflow_run_id, job.run_attempt)


class JobProducer:
    """Holds one bullmq Queue per queue name, each with its own connection."""

    def __init__(
        self,
        target: RedisTarget,
        policy: RetryPolicy,
        *,
        keep_completed: int = 100,
        keep_failed: int = 50,
    ) -> None:
        self.target = target
        self.policy = policy
        self.keep_completed = keep_completed
        self.keep_failed = keep_failed
        self._queues: dict[QueueName, Queue] = {}

    def queue(self, name: QueueName) -> Queue:
        if name not in self._queues:
            self._queues[name] = Queue(
                name.value, {"connection": self.target.bullmq_connection(), "prefix": self.target.prefix}
            )
        return self._queues[name]

    def queues(self) -> dict[QueueName, Queue]:
        return {name: self.queue(name) for name in ALL_QUEUES}

    def options(self, payload: WireModel, job_id: str | None, **extra: Any) -> dict[str, Any]:
        priority = getattr(payload, "priority", None)
        opts: dict[str, Any] = {
            **self.policy.job_options(),
            "removeOnComplete": self.keep_completed,
            "removeOnFail": self.keep_failed,
            "priority": priority.bullmq if priority is not None else 3,
        }
        if job_id is not None:
            opts["jobId"] = job_id
        opts.update(extra)
        return opts

    async def add(
        self, name: QueueName, job_name: str, payload: WireModel, job_id: str | None = None, **extra: Any
    ) -> Job:
        payload = with_correlation_id(payload)
        return await self.queue(name).add(job_name, payload.to_wire(), self.options(payload, job_id, **extra))

    async def ingest(self, job: RunsIngestJob, *, job_id: str | None = None) -> Job:
        return await self.add(QueueName.RUNS_INGEST, "ingest", job, job_id or ingest_job_id(job))

    async def analyze(self, job: RunsAnalyzeJob, *, job_id: str | None = None) -> Job:
        if job_id is None and job.force_recompute:
            # A kept completed analyze job of this run would swallow the standard id.
            job_id = safe_id("reanalyze", analyze_job_id(job).removeprefix("analyze-"), uuid.uuid4().hex)
        return await self.add(QueueName.RUNS_ANALYZE, "analyze", job, job_id or analyze_job_id(job))

    async def recompute(self, job: TestsRecomputeJob, *, job_id: str | None = None) -> Job:
        return await self.add(QueueName.TESTS_RECOMPUTE, "recompute", job, job_id)

    async def poll(self, job: PollingJob, *, job_id: str | None = None, delay: int | None = None) -> Job:
        extra = {"delay": delay} if delay else {}
        return await self.add(QueueName.POLLING, "poll", job, job_id, **extra)

    async def queue_client_ping(self) -> None:
        await self.queue(QueueName.POLLING).client.ping()

    async def counts(self) -> dict[str, dict[str, int]]:
        states = ("waiting", "active", "delayed", "prioritized", "paused", "completed", "failed")
        result: dict[str, dict[str, int]] = {}
        for name, queue in self.queues().items():
            counts = await queue.getJobCounts(*states)
            result[name.value] = {state: int(counts.get(state, 0)) for state in states}
        return result

    async def close(self) -> None:
        for queue in self._queues.values():
            await queue.close()
        self._queues.clear()
