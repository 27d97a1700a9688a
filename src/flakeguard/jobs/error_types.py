"""Error categories of the original worker, for `flakeguard_worker_job_retries_total{error_type}`.

validation (bad payload: never retried), network (GitHub, Redis, PostgreSQL, timeouts), rate_limit
(GitHub limits: delayed, not charged), processing (everything else a job raises: retried), system
(memory, disk). A bounded set, so it can be a label.
"""

from __future__ import annotations

import errno

from flakeguard.github.errors import GitHubError, RateLimited, TransientGitHubError
from flakeguard.jobs.payloads import PayloadError

ERROR_TYPES = ("validation", "network", "rate_limit", "processing", "system")
_SYSTEM_ERRNOS = {errno.ENOSPC, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EDQUOT}


def _is_network(exc: BaseException) -> bool:
    if isinstance(exc, TransientGitHubError | ConnectionError | TimeoutError):
        return True
    module = type(exc).__module__.split(".")[0]
    # httpx transport errors, redis-py connection errors, asyncpg / SQLAlchemy connection failures.
    name = type(exc).__name__
    if module in ("httpx", "httpcore") and name.endswith(("ConnectError", "TimeoutException", "Timeout")):
        return True
    if module == "httpx" and name in ("ReadError", "WriteError", "RemoteProtocolError", "NetworkError"):
        return True
    if module == "redis" and name in ("ConnectionError", "TimeoutError", "BusyLoadingError"):
        return True
    if module == "sqlalchemy" and getattr(exc, "connection_invalidated", False):
        return True
    return module == "asyncpg" and "Connection" in name


def error_type(exc: BaseException) -> str:
    if isinstance(exc, PayloadError):
        return "validation"
    if isinstance(exc, RateLimited):
        return "rate_limit"
    if isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno in _SYSTEM_ERRNOS):
        return "system"
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # a wrapped connection error is network too
        if _is_network(current):
            return "network"
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    if isinstance(exc, GitHubError) and (exc.status or 0) >= 500:
        return "network"
    return "processing"
