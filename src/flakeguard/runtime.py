"""Runs a FlakeGuard process: worker host + API/health server + metrics server, in one event loop.

Start-up: the HTTP servers come up first (liveness answers, readiness says 503), then Redis and the
database are probed until both answer (`flakeguard.outages.startup`), then the workers start.

Shutdown (SIGTERM or SIGINT), in this order:
1. readiness answers 503 at once and the workers take no new job;
2. jobs in flight get SHUTDOWN_GRACE_MS to finish; those still running then are handed back to their
   queue (no attempt spent);
3. the workers, Redis, the database and GitHub clients close, then the HTTP servers; exit code 0.
A second signal hands every job in flight back at once and exits with 128 + the signal number (a
watchdog ends the process FORCED_EXIT_S later whatever still hangs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Generator, Mapping, Sequence

import uvicorn

from flakeguard.config import Settings
from flakeguard.jobs.names import QueueName
from flakeguard.logging import get_logger
from flakeguard.outages.startup import wait_until_reachable
from flakeguard.pipeline.poll_schedule import github_identity, start_polling
from flakeguard.server.app import create_api_app, create_metrics_app
from flakeguard.server.sampler import MetricsSampler
from flakeguard.services import Services
from flakeguard.store.db import describe_database_url
from flakeguard.workers.handlers import HANDLERS
from flakeguard.workers.host import WorkerHost

log = get_logger("flakeguard.runtime")
FORCED_EXIT_S = 10.0


class _Server(uvicorn.Server):
    """uvicorn without signal handling: this module owns the signals.

    uvicorn >= 0.29 installs its own handlers in `capture_signals` and, when its server stops,
    re-raises the signal it caught: that re-raised signal used to count as a second one here and
    force-closed the workers, abandoning every job in flight.
    """

    def install_signal_handlers(self) -> None:
        pass

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _server(app: object, host: str, port: int) -> _Server:
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off")  # type: ignore[arg-type]
    return _Server(config)


def _database_target(services: Services) -> str:
    url = services.engine.url
    if url.get_backend_name() == "sqlite":
        return f"sqlite:{url.database}"
    return f"{url.get_backend_name()}://{url.host}:{url.port or 5432}/{url.database}"


class _Signals:
    """First signal: graceful stop. Second: hand back everything now, and a watchdog."""

    def __init__(self, host: WorkerHost) -> None:
        self.host = host
        self.stop = asyncio.Event()
        self.count = 0
        self.exit_code = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, signum: int) -> None:
        self.count += 1
        name = signal.Signals(signum).name
        loop = asyncio.get_running_loop()
        if self.count == 1:
            self.host.draining = True  # readiness answers 503 from now on
            log.info("shutdown_requested", signal=name, jobs_in_flight=self.host.jobs_in_flight)
            self.stop.set()
            return
        if self.count == 2:
            self.exit_code = 128 + signum
            log.warn("shutdown_forced", signal=name, jobs_in_flight=self.host.jobs_in_flight)
            task = loop.create_task(self.host.hand_back_in_flight())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            loop.call_later(FORCED_EXIT_S, self._exit_now)

    def _exit_now(self) -> None:
        log.error("shutdown_watchdog_exit", exit_code=self.exit_code)
        sys.stderr.flush()
        os._exit(self.exit_code)


async def run_process(
    settings: Settings,
    *,
    redis_url: str | None,
    queues: Sequence[QueueName] | None,
    api_token: str | None,
    run_workers: bool = True,
    schedule_polling: bool = True,
    started: Mapping[str, object] | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT. `started` adds what the caller set up (migrations, an embedded
    Redis) to the one `flakeguard_ready` line that says what runs."""
    services = Services.create(settings, redis_url=redis_url)
    host = WorkerHost(services, HANDLERS, queues or list(QueueName), concurrency=settings.worker_concurrency)
    signals = _Signals(host)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signals, sig)

    servers: list[_Server] = [
        _server(
            create_api_app(services, host if run_workers else None, api_token),
            settings.bind_host,
            settings.health_check_port,
        )
    ]
    if settings.metrics_enabled:
        servers.append(_server(create_metrics_app(services), settings.bind_host, settings.metrics_port))
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    host_name = "localhost" if settings.bind_host in ("0.0.0.0", "::", "") else settings.bind_host
    log.info(
        "dashboard_ready",
        url=f"http://{host_name}:{settings.health_check_port}/",
        public=settings.web_public,
        login=api_token is not None,
    )
    sampler = MetricsSampler(services, host if run_workers else None)
    if settings.metrics_enabled:
        sampler.start()
    try:
        if run_workers and await wait_until_reachable(
            services.outages,
            {"redis": services.redis.describe(), "database": _database_target(services)},
            signals.stop,
            max_backoff_s=settings.startup_max_backoff_ms / 1000,
        ):
            await host.start()
            services.outages.start_watch(("database", "redis"))
            polling = "not in this process (--queues)"
            if schedule_polling and QueueName.POLLING in host.queue_names:
                polling = await start_polling(services)
            log.info(
                "flakeguard_ready",
                health_port=settings.health_check_port,
                metrics_port=settings.metrics_port if settings.metrics_enabled else None,
                redis=services.redis.describe(),
                database=services.engine.dialect.name,
                database_at=describe_database_url(settings.async_database_url),
                **dict(started or {}),
                queues=[q.value for q in host.queue_names],
                github=github_identity(settings) or "not configured",
                polling=polling,
            )
        done, _ = await asyncio.wait(
            [asyncio.create_task(signals.stop.wait()), *tasks], return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            if task in tasks and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        await host.close(grace_s=settings.shutdown_grace_ms / 1000)
        await sampler.stop()
        await services.close()
        for s in servers:
            s.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("flakeguard_stopped", exit_code=signals.exit_code)
    return signals.exit_code
