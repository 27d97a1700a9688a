"""Liveness and readiness. Reports component states only: no URLs with credentials, no secrets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from flakeguard import __version__
from flakeguard.services import Services

router = APIRouter(tags=["health"])


async def _check_database(services: Services) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(3):
            async with services.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return {
            "status": "up",
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "dialect": services.engine.dialect.name,
        }
    except Exception as exc:
        return {"status": "down", "error": type(exc).__name__}


async def _check_redis(services: Services) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(3):
            await services.producer.queue_client_ping()
        return {
            "status": "up",
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "target": services.redis.describe(),
        }
    except Exception as exc:
        return {"status": "down", "error": type(exc).__name__, "target": services.redis.describe()}


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health")
@router.get("/health/ready")
async def ready(request: Request, response: Response) -> dict[str, Any]:
    services: Services = request.app.state.services
    database, redis = await asyncio.gather(_check_database(services), _check_redis(services))
    host = request.app.state.host
    workers = host.status() if host is not None else {}
    # Not ready while starting, stopping (SIGTERM) or riding out a dependency outage.
    worker_ok = host is None or host.ready
    outages = services.outages.snapshot()
    healthy = database["status"] == "up" and redis["status"] == "up" and worker_ok and not outages
    response.status_code = 200 if healthy else 503
    return {
        "status": "healthy" if healthy else "unhealthy",
        "version": __version__,
        "uptime_s": round(time.time() - request.app.state.started_at, 1),
        "components": {"database": database, "redis": redis, "workers": workers},
        "draining": bool(host is not None and host.draining),
        "outages": outages,
    }
