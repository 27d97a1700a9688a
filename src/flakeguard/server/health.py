"""Health endpoints. Component states only: no URLs with credentials, no secrets.

- `/health`: the original worker's JSON (`status`, `timestamp`, `uptime` in ms, `version`,
  `environment`, `checks.{database,redis,queues,memory}`); 200 while healthy or degraded, 503 when
  unhealthy. FlakeGuard's extra facts sit inside each check's `details`.
- `/health/ready`: the readiness probe: 200 when the database, Redis and this process's workers are
  up, else 503 naming the failing component.
- `/health/live`: 200 while the process runs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request, Response

from flakeguard import __version__
from flakeguard.logging import iso_time
from flakeguard.server.health_checks import Check, check_database, check_redis, evaluate
from flakeguard.services import Services

router = APIRouter(tags=["health"])


def _component(check: Check) -> dict[str, Any]:
    """A check as `/health/ready` has always reported it."""
    view: dict[str, Any] = {"status": "up" if check.up else "down"}
    if check.up:
        view["latency_ms"] = round(check.response_time_ms, 1)
    if "error" in check.details:
        view["error"] = check.details["error"]
    for key in ("dialect", "target"):
        if key in check.details:
            view[key] = check.details[key]
    return view


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health")
async def health(request: Request, response: Response) -> dict[str, Any]:
    services: Services = request.app.state.services
    report = await evaluate(services, request.app.state.host)
    response.status_code = 503 if report.status == "unhealthy" else 200
    return {
        "status": report.status,
        "timestamp": iso_time(),
        "uptime": round((time.time() - request.app.state.started_at) * 1000),
        "version": __version__,
        "environment": services.settings.env,
        "checks": {name: check.as_json() for name, check in report.checks.items()},
    }


@router.get("/health/ready")
async def ready(request: Request, response: Response) -> dict[str, Any]:
    services: Services = request.app.state.services
    database_check, redis_check = await asyncio.gather(check_database(services), check_redis(services))
    database, redis = _component(database_check), _component(redis_check)
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
