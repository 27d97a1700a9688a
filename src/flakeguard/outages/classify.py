"""Which dependency, if any, an exception says is unreachable.

Unreachable means: connection refused or reset, a timeout, an unknown host, a server that is starting
up or shutting down ("the database system is not yet accepting connections"), a 502/503/504 from
GitHub after the client's own retries, or credentials the server refuses (a rotated password is an
operator's problem, never the job's). Anything else is an error of the job itself.

Driver errors are matched by type along the exception chain (`__cause__`, `__context__`, and
SQLAlchemy's `orig`). A bare `OSError`/`TimeoutError` carries no type that names its dependency
(asyncpg raises `ConnectionRefusedError` unwrapped), so the deepest traceback frame that belongs to a
known driver names it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import TracebackType
from typing import Literal

import asyncpg.exceptions as pg
import httpx
import redis.exceptions as redis_errors
from sqlalchemy import exc as sa_exc

from flakeguard.github.errors import GitHubError

Dependency = Literal["database", "redis", "github"]
DEPENDENCIES: tuple[Dependency, ...] = ("database", "redis", "github")

_GATEWAY_STATUSES = frozenset({502, 503, 504})
_PG_UNREACHABLE = (
    pg.PostgresConnectionError,  # class 08, including "connection does not exist"
    pg.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    pg.AdminShutdownError,  # 57P01: terminated by a restart
    pg.CrashShutdownError,  # 57P02
    pg.TooManyConnectionsError,
    pg.InvalidAuthorizationSpecificationError,  # wrong user or password
)
_REDIS_UNREACHABLE = (
    redis_errors.ConnectionError,  # includes AuthenticationError
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
)
_MODULE_DEPENDENCY: tuple[tuple[str, Dependency], ...] = (
    ("asyncpg", "database"),
    ("sqlalchemy", "database"),
    ("aiosqlite", "database"),
    ("redis", "redis"),
    ("bullmq", "redis"),
    ("httpx", "github"),
    ("httpcore", "github"),
)


def outage_dependency(error: BaseException) -> Dependency | None:
    """The dependency `error` shows to be unreachable, or None when the error is the job's own."""
    for err in _chain(error):
        dependency = _by_type(err)
        if dependency is not None:
            return dependency
    return None


def _chain(error: BaseException, limit: int = 12) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending and len(seen) < limit:
        err = pending.pop(0)
        if id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        for nxt in (getattr(err, "orig", None), err.__cause__, err.__context__):
            if isinstance(nxt, BaseException):
                pending.append(nxt)


def _by_type(err: BaseException) -> Dependency | None:
    if isinstance(err, httpx.TransportError):
        return "github"
    if isinstance(err, GitHubError):
        return "github" if err.status in _GATEWAY_STATUSES else None
    if isinstance(err, _REDIS_UNREACHABLE):
        return "redis"
    if isinstance(err, _PG_UNREACHABLE):
        return "database"
    if isinstance(err, sa_exc.DBAPIError) and err.connection_invalidated:
        return "database"
    if isinstance(err, sa_exc.TimeoutError):  # no pooled connection came free
        return "database"
    if isinstance(err, OSError | asyncio.TimeoutError):
        return _by_traceback(err.__traceback__)
    return None


def _by_traceback(tb: TracebackType | None) -> Dependency | None:
    found: Dependency | None = None
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        root = module.split(".", 1)[0]
        for prefix, dependency in _MODULE_DEPENDENCY:
            if root == prefix:
                found = dependency
        tb = tb.tb_next
    return found
