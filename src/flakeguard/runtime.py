"""Runs a FlakeGuard process: worker host + API/health server + metrics server, in one event loop.

SIGTERM and SIGINT close the servers, then the workers (which wait for jobs in flight), then the
services; the process exits 0. A second signal forces the workers closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence

import uvicorn

from flakeguard.config import Settings
from flakeguard.jobs.names import QueueName
from flakeguard.logging import get_logger
from flakeguard.server.app import create_api_app, create_metrics_app
from flakeguard.server.sampler import MetricsSampler
from flakeguard.services import Services
from flakeguard.workers.handlers import HANDLERS
from flakeguard.workers.host import WorkerHost

log = get_logger("flakeguard.runtime")


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # we own the signals
        pass


def _server(app: object, host: str, port: int) -> _Server:
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off")  # type: ignore[arg-type]
    return _Server(config)


async def run_process(
    settings: Settings,
    *,
    redis_url: str | None,
    queues: Sequence[QueueName] | None,
    api_token: str | None,
    run_workers: bool = True,
    schedule_polling: bool = True,
) -> int:
    services = Services.create(settings, redis_url=redis_url)
    host = WorkerHost(services, HANDLERS, queues or list(QueueName), concurrency=settings.worker_concurrency)
    stop = asyncio.Event()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        log.info("shutdown_requested", signal=signal.Signals(signum).name, count=signals)
        stop.set()
        if signals >= 2:
            asyncio.get_running_loop().create_task(host.close(force=True))

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)

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
    sampler = MetricsSampler(services, host if run_workers else None)
    try:
        if run_workers:
            await host.start()
            if schedule_polling and settings.polling_enabled and QueueName.POLLING in host.queue_names:
                from flakeguard.pipeline.polling import schedule_polling as schedule

                await schedule(services)
        if settings.metrics_enabled:
            sampler.start()
        log.info(
            "flakeguard_ready",
            health_port=settings.health_check_port,
            metrics_port=settings.metrics_port if settings.metrics_enabled else None,
            redis=services.redis.describe(),
            database=services.engine.dialect.name,
        )
        done, _ = await asyncio.wait(
            [asyncio.create_task(stop.wait()), *tasks], return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            if task in tasks and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for s in servers:
            s.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        await sampler.stop()
        await host.close()
        await services.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("flakeguard_stopped")
    return 0
