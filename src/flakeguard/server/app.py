"""The HTTP apps: the API app (health, queues, webhooks, quarantine, the dashboard) and the metrics app."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from prometheus_client.exposition import choose_encoder

from flakeguard import __version__
from flakeguard.metrics import REGISTRY
from flakeguard.server import health, quarantine, queues, webhooks
from flakeguard.services import Services
from flakeguard.web import install as install_dashboard

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
    app.include_router(queues.original_router)
    app.include_router(webhooks.router)
    app.include_router(quarantine.router)
    install_dashboard(app)  # the web dashboard at / (flakeguard.web)
    return app


def create_metrics_app(services: Services) -> FastAPI:
    """`/metrics`: renders the registry only (queue and process gauges come from the background
    sampler), as OpenMetrics when the scraper's Accept header asks for it, else Prometheus text."""
    app = FastAPI(title="FlakeGuard metrics", openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(REGISTRY), headers={"Content-Type": content_type})

    return app
