"""Runs one bullmq Worker per queue and adapts handler errors to the retry policy.

The adapter is the only place that knows bullmq's error protocol:
- PayloadError / PermanentError -> UnrecoverableError: failed now, kept in the failed set (DLQ);
- RateLimited -> the queue's limiter is set until GitHub's reset, the job is moved to delayed
  without spending an attempt, and DelayedError tells bullmq not to complete or fail it (kind
  "reserve": only the job is delayed, the queue keeps serving higher-priority work);
- anything else propagates, and bullmq retries it with our capped, jittered backoff.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from bullmq import Job, Worker
from bullmq.custom_errors import DelayedError, UnrecoverableError

from flakeguard.github.errors import RateLimited
from flakeguard.jobs.error_types import error_type
from flakeguard.jobs.errors import PermanentError
from flakeguard.jobs.names import QueueName
from flakeguard.jobs.payloads import PayloadError
from flakeguard.jobs.retry import make_backoff_strategy
from flakeguard.logging import bind_job, clear_job, get_logger
from flakeguard.metrics import JOB_RETRIES, JOBS_IN_PROGRESS, job_finished
from flakeguard.services import Services
from flakeguard.workers.context import Handler, JobContext
from flakeguard.workers.foreign_jobs import requeue_at_payload_priority
from flakeguard.workers.job_log import job_log_fields

log = get_logger("flakeguard.worker")

# Queues whose jobs call GitHub get bullmq's limiter, so that `Queue.rateLimit(ms)` can hold
# every job of the queue until GitHub's reset. The cap is far above what one process drains.
GITHUB_QUEUES = {QueueName.RUNS_INGEST, QueueName.RUNS_ANALYZE, QueueName.POLLING}
LIMITER = {"max": 10_000, "duration": 1000}


class WorkerHost:
    def __init__(
        self,
        services: Services,
        handlers: Mapping[QueueName, Handler],
        queues: Sequence[QueueName],
        *,
        concurrency: int,
    ) -> None:
        self.services = services
        self.handlers = handlers
        self.queue_names = list(queues)
        self.concurrency = concurrency
        self.workers: dict[QueueName, Worker] = {}
        self._loops: list[asyncio.Task[Any]] = []
        self.started_at = time.time()

    def _options(self, name: QueueName) -> dict[str, Any]:
        settings = self.services.settings
        opts: dict[str, Any] = {
            "connection": self.services.redis.bullmq_connection(),
            "prefix": self.services.redis.prefix,
            "concurrency": self.concurrency,
            "lockDuration": settings.queue.stalled_job_timeout_ms,
            "stalledInterval": settings.queue.stalled_job_timeout_ms,
            "maxStalledCount": 1,
            "drainDelay": 1,
            "removeOnComplete": {"count": settings.remove_on_complete},
            "removeOnFail": {"count": settings.remove_on_fail},
            "settings": {"backoffStrategy": make_backoff_strategy(self.services.retry_policy)},
            "name": settings.worker_name,
            "autorun": False,
        }
        if name in GITHUB_QUEUES:
            opts["limiter"] = LIMITER
        return opts

    async def start(self) -> None:
        for name in self.queue_names:
            worker = Worker(name.value, self._processor(name), self._options(name))
            # Sub-second precision for delays and schedules (BULLMQ-NOTES.md, "Timing precision").
            if worker.blockingRedisConnection is not None:
                await worker.blockingRedisConnection.getRedisVersion()
            worker.on("error", lambda err, *_: log.error("worker_error", error=str(err)))
            self.workers[name] = worker
            self._loops.append(asyncio.create_task(worker.run(), name=f"worker:{name.value}"))
        log.info("worker_started", queues=[q.value for q in self.queue_names], concurrency=self.concurrency)

    def _processor(self, name: QueueName) -> Any:
        handler = self.handlers[name]

        async def process(job: Job, token: str) -> dict[str, Any]:
            return await self._run(name, handler, job, token)

        return process

    async def _run(self, name: QueueName, handler: Handler, job: Job, token: str) -> dict[str, Any]:
        clear_job()
        bind_job(**job_log_fields(name, job))
        if await requeue_at_payload_priority(job, token, self.services.retry_policy):
            clear_job()
            raise DelayedError()
        log.info("job_started", name=job.name)
        started = time.perf_counter()
        status = "completed"
        JOBS_IN_PROGRESS.labels(name.value).inc()
        try:
            result = await handler(JobContext(job=job, token=token, queue=name, services=self.services))
        except (PayloadError, PermanentError) as exc:
            status = "failed"
            log.error(
                "job_failed_permanently",
                error=str(exc),
                error_type=error_type(exc),
                error_class=type(exc).__name__,
            )
            raise UnrecoverableError(str(exc)) from exc
        except RateLimited as exc:
            status = "delayed"
            JOB_RETRIES.labels(name.value, "rate_limit").inc()
            await self._delay_for_rate_limit(name, job, token, exc)
            raise DelayedError() from exc
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        except Exception as exc:
            attempts = int(job.opts.get("attempts", 1) or 1)
            final = job.attemptsMade + 1 >= attempts
            status = "failed" if final else "retried"
            kind = error_type(exc)
            if not final:
                JOB_RETRIES.labels(name.value, kind).inc()
            log.warn(
                "job_attempt_failed",
                error=str(exc),
                error_type=kind,
                error_class=type(exc).__name__,
                final_attempt=final,
                attempts=attempts,
            )
            raise
        else:
            log.info("job_completed", duration_s=round(time.perf_counter() - started, 3), **_summary(result))
            return result
        finally:
            JOBS_IN_PROGRESS.labels(name.value).dec()
            if status != "cancelled":
                job_finished(name.value, status, time.perf_counter() - started)
            clear_job()

    async def _delay_for_rate_limit(self, name: QueueName, job: Job, token: str, exc: RateLimited) -> None:
        resume_ms = int(exc.resume_at.timestamp() * 1000)
        wait_ms = max(resume_ms - int(time.time() * 1000), 1)
        # A reserve shortfall holds this (low-priority) job only: critical and high work must go on.
        # A real limit (primary/secondary) holds the whole queue, so no other job calls GitHub first.
        if exc.kind != "reserve":
            await self.services.producer.queue(name).rateLimit(wait_ms)
        await job.moveToDelayed(resume_ms, token)
        log.warn(
            "job_rate_limited",
            resume_at=exc.resume_at.astimezone(UTC).isoformat(),
            wait_ms=wait_ms,
            kind=getattr(exc, "kind", None),
        )

    async def close(self, force: bool = False) -> None:
        """Stop taking jobs; wait for the ones in flight (bullmq's close does), then disconnect."""
        await asyncio.gather(*(w.close(force) for w in self.workers.values()), return_exceptions=True)
        await asyncio.gather(*self._loops, return_exceptions=True)
        self.workers.clear()
        self._loops.clear()
        log.info("worker_stopped")

    def status(self) -> dict[str, dict[str, bool]]:
        return {
            name.value: {"running": bool(worker.running), "closing": bool(worker.closing)}
            for name, worker in self.workers.items()
        }


def _summary(result: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if isinstance(v, int | float | str | bool) and k != "error"}
