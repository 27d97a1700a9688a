"""Structured logs with structlog, in the original worker's line shape.

A JSON line is what the original (pino) wrote: `level` (name), `time` (ISO 8601, milliseconds, UTC),
`pid`, `hostname`, `msg`, then the fields of the line. Levels are the original's: trace, debug, info,
warn, error, fatal. `LOG_FORMAT=console` renders the same lines for humans.

While a job runs, `bind_job` puts its context (`jobId`, `correlationId`, `workflowRunId`,
`repository`, `priority`, `queue`, `attempt`) on every line via contextvars. The correlation id is
also what `current_correlation_id` hands to the producer, so every job enqueued while a job (or a
webhook delivery, or an API request) is handled carries the same id.

A last processor redacts values of keys that look like secrets, and anything shaped like a GitHub
token, a JWT or a PEM key, so a careless `log.info(..., token=...)` cannot leak one.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import uuid
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

TRACE = 5
FATAL = logging.CRITICAL
_LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": FATAL,
}
LogFormat = Literal["json", "console"]
CORRELATION_KEY = "correlationId"
_HEAD = ("level", "time", "pid", "hostname", "msg")
_SECRET_KEYS = re.compile(r"(token|secret|password|private_key|authorization|jwt)", re.IGNORECASE)
_SECRET_VALUES = re.compile(
    r"(gh[pousr]_[A-Za-z0-9_]{16,}|github_pat_[A-Za-z0-9_]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?"
    r"(-----END [A-Z ]*PRIVATE KEY-----|$)|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+)"
)
REDACTED = "[redacted]"
_HOSTNAME = socket.gethostname()


def redact_text(text: str) -> str:
    return _SECRET_VALUES.sub(REDACTED, text)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if _SECRET_KEYS.search(key) and key not in ("token_expires_at",):
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
    return event_dict


class _Printer(structlog.PrintLogger):
    """PrintLogger with a `trace` method (structlog knows no level below debug)."""

    trace = structlog.PrintLogger.msg


def _bound_logger_class(level: int) -> type[Any]:
    """structlog's filtering logger for `level`, plus `trace()` which logs only at LOG_LEVEL=trace."""
    base: type[Any] = structlog.make_filtering_bound_logger(max(level, logging.DEBUG))
    enabled = level <= TRACE

    def trace(self: Any, event: str, *args: Any, **kw: Any) -> Any:
        if not enabled:
            return None
        return self._proxy_to_logger("trace", event, *args, **kw)

    return type("FlakeGuardLogger", (base,), {"trace": trace})


def _level_names(_: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The original's level names: trace, debug, info, warn, error, fatal."""
    event_dict["level"] = {"warning": "warn", "critical": "fatal", "exception": "error"}.get(method, method)
    return event_dict


def iso_time(moment: datetime | None = None) -> str:
    """`2024-01-15T10:30:00.000Z`: ISO 8601, milliseconds, UTC (the original's `time`)."""
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def _time_and_process(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict["time"] = iso_time()
    event_dict["pid"] = os.getpid()  # per call: right after a fork too
    event_dict["hostname"] = _HOSTNAME
    return event_dict


def _drop_process(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict.pop("pid", None)
    event_dict.pop("hostname", None)
    return event_dict


def _original_order(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    head = {key: event_dict.pop(key) for key in _HEAD if key in event_dict}
    return {**head, **event_dict}


def configure_logging(level: str = "info", *, stream: Any = None, fmt: LogFormat = "json") -> None:
    logging.addLevelName(TRACE, "TRACE")
    logging.addLevelName(FATAL, "FATAL")
    numeric = _LEVELS.get(level.lower(), logging.INFO)
    handler = logging.StreamHandler(stream or sys.stderr)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO) if numeric < logging.INFO else numeric)
    # Third-party chatter stays at warning unless we are tracing. uvicorn.error's info lines ("Started
    # server process", once per server) say less than our own `flakeguard_ready` line.
    for noisy in ("httpx", "httpcore", "uvicorn.access", "uvicorn.error", "asyncio", "bullmq", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING if numeric > logging.DEBUG else logging.DEBUG)
    shared: list[Any] = [structlog.contextvars.merge_contextvars, _level_names, _time_and_process]
    if fmt == "json":  # the console renderer formats exceptions itself
        shared.append(structlog.processors.format_exc_info)
    shared.append(_redact)
    renderer: list[Any]
    if fmt == "console":
        renderer = [
            _drop_process,
            structlog.dev.ConsoleRenderer(
                timestamp_key="time", colors=bool(getattr(stream or sys.stderr, "isatty", bool)())
            )
        ]
    else:
        renderer = [
            structlog.processors.EventRenamer("msg"),
            _original_order,
            structlog.processors.JSONRenderer(),
        ]
    # Lines of libraries that log through the standard library (uvicorn, alembic...) get the same shape.
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=_bound_logger_class(numeric),
        logger_factory=lambda *_: _Printer(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


def bind_job(**ids: Any) -> None:
    structlog.contextvars.bind_contextvars(**ids)


def clear_job() -> None:
    structlog.contextvars.clear_contextvars()


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def current_correlation_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get(CORRELATION_KEY)
    return value if isinstance(value, str) and value else None


def bind_correlation_id(correlation_id: str | None = None) -> str:
    """Binds (and returns) the correlation id of the work being handled: the given one, or a new one."""
    cid = correlation_id or new_correlation_id()
    structlog.contextvars.bind_contextvars(**{CORRELATION_KEY: cid})
    return cid
