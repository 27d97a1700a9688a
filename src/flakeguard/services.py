"""The long-lived services a process shares: database, queues, GitHub. Built once, closed once."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flakeguard.config import Settings
from flakeguard.github.provider import GitHubProvider
from flakeguard.jobs.connection import RedisTarget
from flakeguard.jobs.producer import JobProducer
from flakeguard.jobs.retry import RetryPolicy
from flakeguard.outages import OutageMonitor
from flakeguard.outages.probes import probes_for
from flakeguard.store.db import create_engine, session_factory


def retry_policy_from(settings: Settings) -> RetryPolicy:
    q = settings.queue
    return RetryPolicy(
        attempts=q.attempts,
        base_delay_ms=q.retry_delay_ms,
        max_delay_ms=q.max_retry_delay_ms,
        multiplier=q.backoff_multiplier,
    )


def redis_target_from(settings: Settings, redis_url: str | None, *, required: bool = True) -> RedisTarget:
    """Where the queues are. With `required=False` and no Redis configured, a target that refuses to
    connect (for in-process work such as `flakeguard ingest`, which never enqueues)."""
    if settings.redis_cluster_enabled:
        if not settings.redis_cluster_nodes:
            raise ValueError("REDIS_CLUSTER_ENABLED needs REDIS_CLUSTER_NODES (host:port,host:port)")
        return RedisTarget.cluster(settings.redis_cluster_nodes, settings.redis_prefix)
    url = redis_url or settings.redis_url
    if url is None and required:
        raise ValueError("no Redis: set REDIS_URL or let `flakeguard up` start the embedded one")
    return RedisTarget(url=url, prefix=settings.redis_prefix)


def credentials_in(*urls: str | None) -> tuple[str, ...]:
    """The passwords inside connection URLs: never to be echoed by an error message we log."""
    found = []
    for url in urls:
        if url:
            with contextlib.suppress(ValueError):
                password = urlsplit(url).password
                if password:
                    found.append(password)
    return tuple(found)


@dataclass
class Services:
    settings: Settings
    redis: RedisTarget
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: JobProducer
    retry_policy: RetryPolicy
    github: GitHubProvider
    outages: OutageMonitor
    _kv: Any = field(default=None, repr=False)
    _analysis_turns: dict[str, asyncio.Lock] = field(default_factory=dict, repr=False)

    def analysis_turn(self, repository: str) -> asyncio.Lock:
        """The analyses of one repository take turns in this process (see `lock_for_analysis`)."""
        return self._analysis_turns.setdefault(repository, asyncio.Lock())

    @property
    def kv(self) -> aioredis.Redis | RedisCluster:
        """A plain Redis client for FlakeGuard's own keys (under `redis.prefix`), not bullmq's."""
        if self._kv is None:
            conn = self.redis.bullmq_connection()
            self._kv = (
                conn if isinstance(conn, RedisCluster) else aioredis.from_url(conn, decode_responses=True)
            )
        kv: aioredis.Redis | RedisCluster = self._kv
        return kv

    def key(self, *parts: str) -> str:
        return ":".join((self.redis.prefix, "flakeguard", *parts))

    @classmethod
    def create(
        cls, settings: Settings, *, redis_url: str | None = None, require_redis: bool = True
    ) -> Services:
        redis = redis_target_from(settings, redis_url, required=require_redis)
        policy = retry_policy_from(settings)
        engine = create_engine(settings.async_database_url)
        producer = JobProducer(
            redis, policy, keep_completed=settings.remove_on_complete, keep_failed=settings.remove_on_fail
        )
        github = GitHubProvider.from_settings(settings)
        return cls(
            settings=settings,
            redis=redis,
            engine=engine,
            sessions=session_factory(engine),
            producer=producer,
            retry_policy=policy,
            github=github,
            outages=OutageMonitor(
                probes_for(engine, producer, settings.github_api_url if github.configured else None),
                redactions=credentials_in(settings.database_url, redis.url),
            ),
        )

    async def close(self) -> None:
        await self.outages.close()
        if self._kv is not None:
            await self._kv.aclose()
        await self.producer.close()
        await self.github.aclose()
        await self.engine.dispose()
