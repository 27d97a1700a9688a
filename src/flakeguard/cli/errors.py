"""Exit codes, and the one line a user reads instead of a traceback.

    0    done
    1    the command ran, and what it was asked about failed: unknown repository, test or run; every
         report refused; `up` already running in this folder; a load test that lost jobs
    2    bad arguments or configuration (the message names the option or variable)
    3    a service is unavailable: database or Redis unreachable, or the database missing or not
         migrated (the message says what to start or run)
    70   an internal error: a bug; `--debug` shows the traceback
    130  interrupted (Ctrl-C)

Commands raise `CliError` for what they detect themselves; `explain` turns the expected exceptions
raised deeper down (connection refused, no such table, ...) into the same kind of line.
"""

from __future__ import annotations

import sys
from enum import IntEnum
from types import ModuleType


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    UNAVAILABLE = 3
    INTERNAL = 70
    INTERRUPTED = 130


class CliError(Exception):
    """What went wrong and what to do, in one line, with its exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _loaded(module: str) -> ModuleType | None:
    """An exception module only if something imported it already (else nothing can raise its types)."""
    return sys.modules.get(module)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _is_missing_table(exc: BaseException) -> bool:
    text = str(exc)
    return (
        "no such table" in text
        or "UndefinedTable" in text
        or ("relation" in text and "does not exist" in text)
    )


def explain(exc: BaseException) -> CliError | None:
    """The CliError for an expected condition, or None for a bug."""
    if isinstance(exc, CliError):
        return exc
    sqlalchemy_exc = _loaded("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.DBAPIError):
        if _is_missing_table(exc):
            return CliError(
                "the database has no FlakeGuard tables: run `flakeguard migrate` (or `flakeguard up`)",
                ExitCode.UNAVAILABLE,
            )
        cause = exc.orig if exc.orig is not None else exc
        return CliError(f"database error: {_first_line(cause)}", ExitCode.UNAVAILABLE)
    redis_exc = _loaded("redis.exceptions")
    if redis_exc is not None and isinstance(
        exc,
        (redis_exc.ConnectionError, redis_exc.TimeoutError),
    ):
        return CliError(f"lost Redis: {_first_line(exc)}", ExitCode.UNAVAILABLE)
    embedded = _loaded("flakeguard.embedded_redis")
    if embedded is not None and isinstance(exc, embedded.EmbeddedRedisError):
        return CliError(f"could not start the embedded Redis: {_first_line(exc)}", ExitCode.UNAVAILABLE)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return CliError(f"connection failed: {_first_line(exc)}", ExitCode.UNAVAILABLE)
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        where = f"{exc.filename}: " if exc.filename else ""
        return CliError(f"{where}{exc.strerror or _first_line(exc)}", ExitCode.FAILED)
    return None
