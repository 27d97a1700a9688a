"""Background sampling of what `/metrics` reports but cannot measure cheaply at scrape time.

Every SAMPLE_INTERVAL_S the sampler evaluates health (the same checks as `/health`) and sets
`flakeguard_worker_health`, the queue gauges (`queue_size`, `dlq_size`) from the queue check's
counts, and the process gauges (`memory_usage_bytes`, `cpu_usage_percent`). A scrape then only
renders the registry: it answers at once even while Redis or PostgreSQL hang, with the last good
queue sample (`flakeguard_worker_queue_sampled_at_seconds` says how old it is).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from flakeguard.jobs.names import ALL_QUEUES
from flakeguard.logging import get_logger
from flakeguard.metrics import (
    CPU_USAGE,
    DLQ_SIZE,
    MEMORY_USAGE,
    QUEUE_SAMPLED_AT,
    QUEUE_SIZE,
    WORKER_HEALTH,
    initialize_queue_labels,
)
from flakeguard.server.health_checks import HealthReport, evaluate, memory_usage
from flakeguard.services import Services

if TYPE_CHECKING:
    from flakeguard.workers.host import WorkerHost

log = get_logger("flakeguard.sampler")
SAMPLE_INTERVAL_S = 5.0
QUEUE_STATES = ("waiting", "active", "delayed", "prioritized", "paused", "completed", "failed")


class CpuMeter:
    """CPU used by this process between two calls, in percent of one core."""

    def __init__(self) -> None:
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def percent(self) -> float:
        cpu, wall = time.process_time(), time.monotonic()
        elapsed = wall - self._wall
        used = (cpu - self._cpu) / elapsed * 100 if elapsed > 0 else 0.0
        self._cpu, self._wall = cpu, wall
        return max(used, 0.0)


def record(report: HealthReport) -> None:
    WORKER_HEALTH.set(report.value)
    if report.counts is not None:
        for queue, counts in report.counts.items():
            for state in QUEUE_STATES:
                QUEUE_SIZE.labels(queue, state).set(counts.get(state, 0))
            DLQ_SIZE.labels(queue).set(counts.get("failed", 0))
        QUEUE_SAMPLED_AT.set(time.time())


class MetricsSampler:
    def __init__(
        self, services: Services, host: WorkerHost | None, interval_s: float = SAMPLE_INTERVAL_S
    ) -> None:
        self.services = services
        self.host = host
        self.interval_s = interval_s
        self.cpu = CpuMeter()
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> HealthReport:
        for kind, value in memory_usage().items():
            MEMORY_USAGE.labels(kind).set(value)
        CPU_USAGE.set(round(self.cpu.percent(), 2))
        report = await evaluate(self.services, self.host)
        record(report)
        return report

    async def _loop(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception as exc:  # keep sampling; the next tick may succeed
                log.warn("metrics_sample_failed", error=str(exc), error_class=type(exc).__name__)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        initialize_queue_labels(q.value for q in ALL_QUEUES)
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="metrics-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
