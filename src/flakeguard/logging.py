"""Structured JSON logs with structlog.

Levels are the original's: trace, debug, info, warn, error, fatal. `bind_job` adds correlation ids
(queue, job id, workflow run id) to every line logged while a job runs, via contextvars.
A last processor redacts values of keys that look like secrets, and anything shaped like a GitHub
token or a PEM key, so a careless `log.info(..., token=...)` cannot leak one.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

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
_SECRET_KEYS = re.compile(r"(token|secret|password|private_key|authorization|jwt)", re.IGNORECASE)
_SECRET_VALUES = re.compile(
    r"(gh[pousr]_[A-Za-z0-9_]{16,}|github_pat_[A-Za-z0-9_]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?"
    r"(-----END [A-Z ]*PRIVATE KEY-----|$)|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+)"
)
REDACTED = "[redacted]"


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


def configure_logging(level: str = "info", *, stream: Any = None) -> None:
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
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _level_names,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact,
    ]
    # Lines of libraries that log through the standard library (uvicorn, alembic...) get the same shape.
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer()],
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
