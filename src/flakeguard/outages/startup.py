"""Start-up against dependencies that may not answer yet.

A wrong password, an unknown host or a refused port must not hang the process silently: every round
probes each dependency (bounded by the probe timeout, so the first log line comes within seconds),
logs `dependency_unreachable` (error) naming the dependency and its target (never its credentials),
and tries again after a capped, doubling backoff. A stop request (SIGTERM) ends the wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

from flakeguard.logging import get_logger
from flakeguard.outages.classify import Dependency
from flakeguard.outages.monitor import OutageMonitor

log = get_logger("flakeguard.startup")
FIRST_BACKOFF_S = 1.0


async def wait_until_reachable(
    monitor: OutageMonitor,
    targets: Mapping[Dependency, str],
    stop: asyncio.Event,
    *,
    max_backoff_s: float,
) -> bool:
    """True once every dependency in `targets` answers; False when `stop` was set first."""
    started = time.monotonic()
    backoff = FIRST_BACKOFF_S
    rounds = 0
    while not stop.is_set():
        rounds += 1
        errors = await _probe_all(monitor, list(targets))
        if not errors:
            if rounds > 1:
                log.info("dependencies_reachable", waited_s=round(time.monotonic() - started, 1))
            return True
        for dependency, error in errors.items():
            log.error(
                "dependency_unreachable",
                dependency=dependency,
                target=targets[dependency],
                error=monitor.describe(error),
                attempt=rounds,
                retry_in_s=backoff,
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(backoff * 2, max_backoff_s)
    return False


async def _probe_all(
    monitor: OutageMonitor, dependencies: list[Dependency]
) -> dict[Dependency, BaseException]:
    async def one(dependency: Dependency) -> BaseException | None:
        try:
            async with asyncio.timeout(monitor.probe_timeout_s):
                await monitor.probes[dependency]()
        except Exception as exc:
            return exc
        return None

    results = await asyncio.gather(*(one(d) for d in dependencies))
    return {d: r for d, r in zip(dependencies, results, strict=True) if r is not None}
