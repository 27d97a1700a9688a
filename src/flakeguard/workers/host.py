"""Runs one bullmq Worker per queue and adapts handler errors to the retry policy.

The adapter is the only place that knows bullmq's error protocol:
- PayloadError / PermanentError -> UnrecoverableError: failed now, kept in the failed set (DLQ);
- RateLimited -> the queue's limiter is set until GitHub's reset, the job is moved to delayed
  without spending an attempt, and DelayedError tells bullmq not to complete or fail it (kind
  "reserve": only the job is delayed, the queue keeps serving higher-priority work);
- a dependency outage (PostgreSQL, Redis or GitHub unreachable, see `flakeguard.outages`) -> the
  outage is reported (every worker of the host pauses until a probe sees the dependency again) and
  the job is handed back the same way, delayed by OUTAGE_RETRY_DELAY_MS, without spending an attempt;
- anything else propagates, and bullmq retries it with our capped, jittered backoff.

Stopping (`close`): the workers pause (no new jobs; bullmq's own close would stop renewing the locks
of the jobs still running), jobs in flight get `grace_s` to finish, and the ones still running then
are cancelled and handed back (moved to delayed, due at once, no attempt spent) before the workers
close. A job that could not be handed back (Redis gone) stays active and the stalled check of any
worker puts it back once its lock expires; a stall is no failure either (`QUEUE_MAX_STALLED_COUNT`).
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
from flakeguard.metrics import JOB_RETRIES, JOBS_HANDED_BACK, JOBS_IN_PROGRESS, job_finished
from flakeguard.outages import outage_dependency
from flakeguard.outages.monitor import describe_error
from flakeguard.services import Services
from flakeguard.workers.context import Handler, JobContext
from flakeguard.workers.foreign_jobs import requeue_at_payload_priority
from flakeguard.workers.job_log import job_log_fields

log = get_logger("flakeguard.worker")

# Queues whose jobs call GitHub get bullmq's limiter, so that `Queue.rateLimit(ms)` can hold
# every job of the queue until GitHub's reset. The cap is far above what one process drains.
GITHUB_QUEUES = {QueueName.RUNS_INGEST, QueueName.RUNS_ANALYZE, QueueName.POLLING}
LIMITER = {"max": 10_000, "duration": 1000}
# bullmq retries a failed fetch (Redis unreachable) after this long; its default of 15 s would leave a
# worker idle for up to 15 s after Redis is back.
RUN_RETRY_DELAY_MS = 1000
# A hand-back is one Lua call; past this, Redis is not answering and the stalled check takes over.
HAND_BACK_TIMEOUT_S = 5.0


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
        self.started = False
        self.draining = False
        self._handing_back = False
        self._handlers_running: set[asyncio.Task[dict[str, Any]]] = set()
        self._runs = 0
        self._pausing: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        services.outages.on_change(self._on_outage_change)

    def _options(self, name: QueueName) -> dict[str, Any]:
        settings = self.services.settings
        opts: dict[str, Any] = {
            "connection": self.services.redis.bullmq_connection(),
            "prefix": self.services.redis.prefix,
            "concurrency": self.concurrency,
            "lockDuration": settings.queue.stalled_job_timeout_ms,
            "stalledInterval": settings.queue.stalled_check_interval_ms,
            "maxStalledCount": settings.queue.max_stalled_count,
            "runRetryDelay": RUN_RETRY_DELAY_MS,
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
            worker.on("error", lambda err, *_: log.error("worker_error", error=describe_error(err)))
            worker.on(
                "stalled",
                lambda job_id, *_, queue=name.value: log.warn(
                    "job_stalled_requeued", queue=queue, jobId=job_id
                ),
            )
            self.workers[name] = worker
            self._loops.append(asyncio.create_task(worker.run(), name=f"worker:{name.value}"))
        self.started = True
        if self.services.outages.down:
            self._on_outage_change()
        log.info("worker_started", queues=[q.value for q in self.queue_names], concurrency=self.concurrency)

    @property
    def ready(self) -> bool:
        """Taking jobs: started, not stopping, and every dependency reachable."""
        return self.started and not self.draining and not self.services.outages.down

    def _processor(self, name: QueueName) -> Any:
        handler = self.handlers[name]

        async def process(job: Job, token: str) -> dict[str, Any]:
            self._runs += 1
            self._idle.clear()
            try:
                return await self._run(name, handler, job, token)
            finally:
                self._runs -= 1
                if self._runs == 0:
                    self._idle.set()

        return process

    async def _run(self, name: QueueName, handler: Handler, job: Job, token: str) -> dict[str, Any]:
        clear_job()
        bind_job(**job_log_fields(name, job))
        if self.draining or self.services.outages.down:
            # Fetched just as the process began to stop or an outage began: not started at all.
            reason = "shutdown" if self.draining else "outage"
            await self._hand_back(name, job, token, reason, 0 if self.draining else self._outage_delay_ms)
            clear_job()
            raise DelayedError()
        if await requeue_at_payload_priority(job, token, self.services.retry_policy):
            clear_job()
            raise DelayedError()
        log.info("job_started", name=job.name)
        started = time.perf_counter()
        status = "completed"
        JOBS_IN_PROGRESS.labels(name.value).inc()
        ctx = JobContext(job=job, token=token, queue=name, services=self.services)
        # Its own task, so that a shutdown can cancel the handler and still hand the job back.
        task: asyncio.Task[dict[str, Any]] = asyncio.ensure_future(handler(ctx))
        self._handlers_running.add(task)
        try:
            result = await task
        except asyncio.CancelledError:
            status = "cancelled"
            current = asyncio.current_task()
            if task.cancelled() and self._handing_back and (current is None or not current.cancelling()):
                await self._hand_back(name, job, token, "shutdown", 0)
                raise DelayedError() from None
            task.cancel()
            raise
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
        except Exception as exc:
            dependency = outage_dependency(exc)
            if dependency is not None:
                status = "delayed"
                self.services.outages.report(dependency, exc)
                await self._hand_back(
                    name, job, token, "outage", self._outage_delay_ms, dependency=dependency
                )
                raise DelayedError() from exc
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
            self._handlers_running.discard(task)
            JOBS_IN_PROGRESS.labels(name.value).dec()
            if status != "cancelled":
                job_finished(name.value, status, time.perf_counter() - started)
            clear_job()

    @property
    def _outage_delay_ms(self) -> int:
        return self.services.settings.outage_retry_delay_ms

    async def _hand_back(
        self, name: QueueName, job: Job, token: str, reason: str, delay_ms: int, **fields: Any
    ) -> None:
        """Back to the queue without spending an attempt (bullmq's moveToDelayed skips the attempt)."""
        JOBS_HANDED_BACK.labels(name.value, reason).inc()
        try:
            async with asyncio.timeout(HAND_BACK_TIMEOUT_S):
                await job.moveToDelayed(int(time.time() * 1000) + delay_ms, token)
        except Exception as exc:
            log.warn(
                "job_hand_back_failed", reason=reason, error=describe_error(exc), recovery="stalled check"
            )
            return
        log.info("job_handed_back", reason=reason, delay_ms=delay_ms, **fields)

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

    # -- pausing for outages --------------------------------------------------------------------

    def _on_outage_change(self) -> None:
        if not self.started or self.draining:
            return
        if self.services.outages.down:
            self._pause()
        else:
            for worker in self.workers.values():
                worker.resume()
            log.info("worker_resumed")

    def _pause(self) -> None:
        for worker in self.workers.values():
            if not worker.paused:
                task = asyncio.get_running_loop().create_task(worker.pause(do_not_wait_active=True))
                self._pausing.add(task)
                task.add_done_callback(self._pausing.discard)

    # -- stopping -----------------------------------------------------------------------------

    @property
    def jobs_in_flight(self) -> int:
        return self._runs

    async def close(self, grace_s: float | None = None) -> None:
        """Stop taking jobs; give the jobs in flight `grace_s` (None: as long as they need) to
        finish, hand back the rest, then close the workers and their connections."""
        self.draining = True
        self._pause()
        if self._runs:
            log.info("worker_draining", jobs_in_flight=self._runs, grace_s=grace_s)
            try:
                async with asyncio.timeout(grace_s):
                    await self._idle.wait()
            except TimeoutError:
                log.warn("shutdown_grace_expired", jobs_in_flight=self._runs, grace_s=grace_s)
                await self.hand_back_in_flight()
        await asyncio.gather(*(w.close() for w in self.workers.values()), return_exceptions=True)
        await asyncio.gather(*self._loops, return_exceptions=True)
        self.workers.clear()
        self._loops.clear()
        log.info("worker_stopped")

    async def hand_back_in_flight(self) -> None:
        """Cancels every running handler; each job goes back to its queue (no attempt spent)."""
        self.draining = True
        self._handing_back = True
        for task in list(self._handlers_running):
            task.cancel()
        try:
            async with asyncio.timeout(HAND_BACK_TIMEOUT_S * 2):
                await self._idle.wait()
        except TimeoutError:
            log.warn("hand_back_incomplete", jobs_in_flight=self._runs, recovery="stalled check")

    def status(self) -> dict[str, dict[str, bool]]:
        return {
            name.value: {"running": bool(worker.running), "closing": bool(worker.closing or self.draining)}
            for name, worker in self.workers.items()
        }


def _summary(result: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if isinstance(v, int | float | str | bool) and k != "error"}
