"""The outage state of one process: which dependencies are down since when, and the probes that end it.

`report()` is called by whoever sees an unreachable dependency (a job, the idle watch, start-up). The
first report of a dependency logs `dependency_outage_started` (warn) and counts it; a probe then
retries with capped backoff until the dependency answers, logs `dependency_outage_ended` (info, with
`duration_s`) and tells the listeners (the worker host resumes). Health reads `snapshot()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import Context
from datetime import UTC, datetime
from typing import Any

from flakeguard.logging import get_logger, redact_text
from flakeguard.metrics import DEPENDENCY_OUTAGES, DEPENDENCY_UP
from flakeguard.outages.classify import Dependency

log = get_logger("flakeguard.outages")

Probe = Callable[[], Awaitable[None]]
PROBE_TIMEOUT_S = 3.0
FIRST_PROBE_DELAY_S = 0.5
MAX_PROBE_DELAY_S = 5.0
WATCH_INTERVAL_S = 5.0


def describe_error(error: BaseException) -> str:
    """Type and message, cut short and without anything shaped like a secret."""
    message = redact_text(str(error).strip())[:200]
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


class OutageMonitor:
    def __init__(
        self,
        probes: Mapping[Dependency, Probe],
        *,
        max_probe_delay_s: float = MAX_PROBE_DELAY_S,
        redactions: tuple[str, ...] = (),
    ) -> None:
        self.probes = dict(probes)
        self.max_probe_delay_s = max_probe_delay_s
        self.probe_timeout_s = PROBE_TIMEOUT_S
        self._redactions = tuple(r for r in redactions if r)
        self._since: dict[Dependency, tuple[float, float]] = {}  # monotonic, wall clock
        self._probing: dict[Dependency, asyncio.Task[None]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._all_up = asyncio.Event()
        self._all_up.set()
        self._watch: asyncio.Task[None] | None = None
        for dependency in self.probes:
            DEPENDENCY_UP.labels(dependency).set(1)

    # -- state ---------------------------------------------------------------------------------

    @property
    def down(self) -> tuple[Dependency, ...]:
        return tuple(self._since)

    def is_down(self, dependency: Dependency) -> bool:
        return dependency in self._since

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """For health: each dependency that is down, since when and for how long."""
        now = time.monotonic()
        return {
            dependency: {
                "status": "down",
                "since": datetime.fromtimestamp(wall, UTC).isoformat(),
                "seconds": round(now - started, 1),
            }
            for dependency, (started, wall) in self._since.items()
        }

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    async def wait_until_up(self) -> None:
        await self._all_up.wait()

    # -- reporting -----------------------------------------------------------------------------

    def report(self, dependency: Dependency, error: BaseException) -> None:
        """Marks `dependency` down (once) and starts probing it; later reports are no-ops."""
        if dependency in self._since:
            return
        self._since[dependency] = (time.monotonic(), time.time())
        self._all_up.clear()
        DEPENDENCY_OUTAGES.labels(dependency).inc()
        DEPENDENCY_UP.labels(dependency).set(0)
        log.warn("dependency_outage_started", dependency=dependency, error=self.describe(error))
        if dependency in self.probes:
            # A context of its own: the reporting job's log fields must not stick to the probe's lines.
            self._probing[dependency] = asyncio.get_running_loop().create_task(
                self._probe_until_up(dependency), name=f"outage-probe:{dependency}", context=Context()
            )
        self._notify()

    def describe(self, error: BaseException) -> str:
        """`describe_error` without the credentials this process knows (URL passwords)."""
        text = describe_error(error)
        for secret in self._redactions:
            text = text.replace(secret, "[redacted]")
        return text

    async def _probe_until_up(self, dependency: Dependency) -> None:
        delay = FIRST_PROBE_DELAY_S
        while True:
            await asyncio.sleep(delay)
            if await self.check(dependency):
                break
            delay = min(delay * 2, self.max_probe_delay_s)
        started, _ = self._since.pop(dependency)
        self._probing.pop(dependency, None)
        DEPENDENCY_UP.labels(dependency).set(1)
        log.info(
            "dependency_outage_ended", dependency=dependency, duration_s=round(time.monotonic() - started, 1)
        )
        if not self._since:
            self._all_up.set()
        self._notify()

    async def check(self, dependency: Dependency) -> bool:
        """One probe, bounded in time: True when the dependency answers."""
        try:
            async with asyncio.timeout(self.probe_timeout_s):
                await self.probes[dependency]()
        except Exception:
            return False
        return True

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    # -- the idle watch ------------------------------------------------------------------------

    def start_watch(self, dependencies: tuple[Dependency, ...], interval_s: float = WATCH_INTERVAL_S) -> None:
        """Probes `dependencies` every `interval_s` while they are up, so that an outage is seen (and
        logged, and makes the process not-ready) even when no job is running."""
        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(
                self._watch_loop(dependencies, interval_s), name="outage-watch", context=Context()
            )

    async def _watch_loop(self, dependencies: tuple[Dependency, ...], interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            for dependency in dependencies:
                if dependency in self._since or dependency not in self.probes:
                    continue
                try:
                    async with asyncio.timeout(self.probe_timeout_s):
                        await self.probes[dependency]()
                except Exception as exc:
                    self.report(dependency, exc)

    async def close(self) -> None:
        tasks = [t for t in (self._watch, *self._probing.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._watch = None
        self._probing.clear()
