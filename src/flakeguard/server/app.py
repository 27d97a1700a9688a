"""The HTTP apps: the API app (health, queues, webhooks, quarantine, the dashboard) and the metrics app."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from flakeguard import __version__
from flakeguard.metrics import QUEUE_DEPTH, REGISTRY
from flakeguard.server import health, quarantine, queues, webhooks
from flakeguard.services import Services
from flakeguard.web import install as install_dashboard

METRICS_REDIS_TIMEOUT_S = 2.0

if TYPE_CHECKING:
    from flakeguard.workers.host import WorkerHost


def create_api_app(
    services: Services, host: WorkerHost | None = None, api_token: str | None = None
) -> FastAPI:
    app = FastAPI(
        title="FlakeGuard",
        version=__version__,
        description="Flaky-test detection for GitHub Actions: health, queues, webhooks, quarantine.",
    )
    app.state.services = services
    app.state.host = host
    app.state.api_token = api_token
    app.state.started_at = time.time()
    app.include_router(health.router)
    app.include_router(queues.router)
    app.include_router(webhooks.router)
    app.include_router(quarantine.router)
    install_dashboard(app)  # the web dashboard at / (flakeguard.web)
    return app


def create_metrics_app(services: Services) -> FastAPI:
    app = FastAPI(title="FlakeGuard metrics", openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        try:
            # Bounded: a scrape answers at once while Redis is down (the outage has its own metric).
            if services.outages.is_down("redis"):
                raise ConnectionError("redis is down")
            async with asyncio.timeout(METRICS_REDIS_TIMEOUT_S):
                counts_by_queue = await services.producer.counts()
            for queue, counts in counts_by_queue.items():
                for state, value in counts.items():
                    QUEUE_DEPTH.labels(queue, state).set(value)
        except Exception:  # a scrape must not fail because Redis is down; health reports that
            pass
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app
