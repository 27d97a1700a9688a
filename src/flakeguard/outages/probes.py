"""One cheap request per dependency that says whether it answers: SELECT 1, PING, and an
unauthenticated GET of GitHub's /rate_limit (any answer but a gateway error means reachable; GitHub
does not count /rate_limit against any limit)."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from flakeguard.jobs.producer import JobProducer
from flakeguard.outages.classify import Dependency
from flakeguard.outages.monitor import PROBE_TIMEOUT_S, Probe


def database_probe(engine: AsyncEngine) -> Probe:
    async def probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return probe


def redis_probe(producer: JobProducer) -> Probe:
    async def probe() -> None:
        await producer.queue_client_ping()

    return probe


def github_probe(api_url: str) -> Probe:
    async def probe() -> None:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as http:
            response = await http.get(api_url.rstrip("/") + "/rate_limit")
        if response.status_code in (502, 503, 504):
            raise httpx.HTTPStatusError("gateway error", request=response.request, response=response)

    return probe


def probes_for(
    engine: AsyncEngine, producer: JobProducer, github_api_url: str | None
) -> dict[Dependency, Probe]:
    probes: dict[Dependency, Probe] = {"database": database_probe(engine), "redis": redis_probe(producer)}
    if github_api_url:
        probes["github"] = github_probe(github_api_url)
    return probes
