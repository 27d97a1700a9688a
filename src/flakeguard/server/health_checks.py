"""The health checks behind `/health`, `/health/ready` and `flakeguard_worker_health`: one
implementation, three views.

Each check reports `status` (healthy | degraded | unhealthy), `responseTime` (ms), `lastChecked` and
`details` — the original worker's shape. Component states only: no URL with credentials, no secret.

- database: `SELECT 1`; unhealthy when it fails or takes over 3 s, degraded over 1 s.
- redis: a PING on the queues' connection; `details.cluster`, `details.nodes`.
- queues: job counts of every queue (`totalWaiting` counts prioritised jobs too: every FlakeGuard job
  has a priority) and this process's workers; unhealthy when the counts cannot be read or a worker
  of this process stopped, degraded when more than BACKLOG_DEGRADED jobs wait or a queue's dead
  letters reached REMOVE_ON_FAIL (older ones are being dropped).
- memory: this process's rss, vms and heap; degraded above 90 % of the container's memory limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import psutil
from redis.asyncio.cluster import RedisCluster
from sqlalchemy import text

from flakeguard.jobs.names import QueueName
from flakeguard.logging import iso_time
from flakeguard.services import Services

if TYPE_CHECKING:
    from flakeguard.workers.host import WorkerHost

HealthStatus = Literal["healthy", "degraded", "unhealthy"]
HEALTH_VALUE: dict[HealthStatus, float] = {"healthy": 1.0, "degraded": 0.5, "unhealthy": 0.0}
_RANK: dict[HealthStatus, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}
CHECK_TIMEOUT_S = 3.0
SLOW_MS = 1000.0
BACKLOG_DEGRADED = 1000
MEMORY_DEGRADED_SHARE = 0.9
_PROCESS = psutil.Process()


@dataclass(frozen=True, slots=True)
class Check:
    status: HealthStatus
    response_time_ms: float
    last_checked: datetime
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def up(self) -> bool:
        return self.status != "unhealthy"

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "responseTime": round(self.response_time_ms),
            "lastChecked": iso_time(self.last_checked),
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: HealthStatus
    checks: dict[str, Check]
    counts: dict[str, dict[str, int]] | None  # per queue and state, when Redis answered

    @property
    def value(self) -> float:
        return HEALTH_VALUE[self.status]


def worst(statuses: list[HealthStatus]) -> HealthStatus:
    return max(statuses, key=lambda s: _RANK[s], default="healthy")


async def _timed(
    probe: Callable[[], Awaitable[dict[str, Any]]], base: dict[str, Any]
) -> tuple[HealthStatus, float, dict[str, Any]]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            details = {**base, **await probe()}
    except Exception as exc:  # a failed check is reported, never raised
        elapsed = (time.perf_counter() - started) * 1000
        error = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        return "unhealthy", elapsed, {**base, "error": error}
    elapsed = (time.perf_counter() - started) * 1000
    return ("degraded" if elapsed > SLOW_MS else "healthy"), elapsed, details


async def check_database(services: Services) -> Check:
    async def probe() -> dict[str, Any]:
        async with services.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {}

    status, elapsed, details = await _timed(probe, {"dialect": services.engine.dialect.name})
    return Check(status, elapsed, datetime.now(UTC), details)


async def check_redis(services: Services) -> Check:
    client = services.producer.queue(QueueName.POLLING).client

    async def probe() -> dict[str, Any]:
        await client.ping()
        nodes = len(client.get_nodes()) if isinstance(client, RedisCluster) else 1
        return {"nodes": nodes}

    base = {"cluster": services.redis.is_cluster, "nodes": len(services.redis.cluster_nodes) or 1}
    status, elapsed, details = await _timed(probe, {**base, "target": services.redis.describe()})
    return Check(status, elapsed, datetime.now(UTC), details)


async def check_queues(
    services: Services, host: WorkerHost | None
) -> tuple[Check, dict[str, dict[str, int]] | None]:
    counts: dict[str, dict[str, int]] = {}
    paused: dict[str, bool] = {}

    async def probe() -> dict[str, Any]:
        counts.update(await services.producer.counts())
        for name, queue in services.producer.queues().items():
            paused[name.value] = bool(await queue.isPaused())
        return {}

    status, elapsed, details = await _timed(probe, {})
    workers = host.status() if host is not None else {}
    stopped = [name for name, w in workers.items() if not w["running"] or w["closing"]]
    if counts:
        keep_failed = services.settings.remove_on_fail
        waiting = sum(c["waiting"] + c["prioritized"] for c in counts.values())
        at_cap = [q for q, c in counts.items() if keep_failed and c["failed"] >= keep_failed]
        details.update(
            totalWaiting=waiting,
            totalActive=sum(c["active"] for c in counts.values()),
            totalFailed=sum(c["failed"] for c in counts.values()),
            totalDelayed=sum(c["delayed"] for c in counts.values()),
            totalPaused=sum(c["paused"] for c in counts.values()),
            queues={q: {**c, "isPaused": paused.get(q, False)} for q, c in counts.items()},
        )
        if status == "healthy" and (waiting > BACKLOG_DEGRADED or at_cap):
            status = "degraded"
            details["reason"] = (
                f"dead letters of {', '.join(at_cap)} reached REMOVE_ON_FAIL ({keep_failed})"
                if at_cap
                else f"more than {BACKLOG_DEGRADED} jobs wait"
            )
    details["workers"] = workers
    if host is not None and not host.started:
        status = "unhealthy"
        details["reason"] = "workers not started yet: waiting for Redis and the database"
    if stopped:
        status = "unhealthy"
        details["reason"] = f"workers stopped: {', '.join(stopped)}"
    return Check(status, elapsed, datetime.now(UTC), details), (counts or None)


def memory_limit_bytes() -> int | None:
    """The container's memory limit (cgroup v2, then v1), or None when there is none."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:
            return int(raw)
    return None


def anonymous_resident_bytes() -> int | None:
    """RssAnon: resident anonymous memory (the malloc heap and Python's object arenas). Linux only."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_usage() -> dict[str, int]:
    info = _PROCESS.memory_info()
    usage = {"rss": int(info.rss), "vms": int(info.vms)}
    heap = anonymous_resident_bytes()
    if heap is not None:
        usage["heap_used"] = heap
    return usage


def check_memory() -> Check:
    started = time.perf_counter()
    usage = memory_usage()
    limit = memory_limit_bytes()
    details: dict[str, Any] = {
        "rss": usage["rss"],
        "vms": usage["vms"],
        "heapUsed": usage.get("heap_used"),
        "limit": limit,
    }
    status: HealthStatus = "healthy"
    if limit:
        share = usage["rss"] / limit
        details["percentOfLimit"] = round(100 * share, 1)
        if share > MEMORY_DEGRADED_SHARE:
            status = "degraded"
    return Check(status, (time.perf_counter() - started) * 1000, datetime.now(UTC), details)


async def evaluate(services: Services, host: WorkerHost | None) -> HealthReport:
    database, redis, (queues, counts) = await asyncio.gather(
        check_database(services), check_redis(services), check_queues(services, host)
    )
    checks = {"database": database, "redis": redis, "queues": queues, "memory": check_memory()}
    return HealthReport(worst([c.status for c in checks.values()]), checks, counts)
