"""The database for commands that work in-process (no Redis, no GitHub): found, reachable, migrated.

A command that reads never creates: without the embedded SQLite file it says where it looked and
what to run, instead of creating an empty `.flakeguard/` wherever it was started. Reaching the
database is bounded by CONNECT_TIMEOUT_S, and a database that is empty or at another migration is
named as such (exit code 3), never left to fail later as "no such table".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flakeguard.cli.errors import CliError, ExitCode

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from flakeguard.config import Settings

CONNECT_TIMEOUT_S = 8.0


@dataclass
class Database:
    """Settings and sessions without Redis or GitHub: what the in-process commands need."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]


def embedded_path(settings: Settings) -> Path | None:
    """The SQLite file FlakeGuard keeps when DATABASE_URL is unset; None when it is set."""
    return None if settings.database_url is not None else (settings.data_dir / "flakeguard.db").resolve()


def describe(settings: Settings) -> str:
    from flakeguard.store.db import describe_database_url

    return describe_database_url(settings.async_database_url)


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "orig", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def _reason(exc: BaseException) -> str:
    cause = _root_cause(exc)
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return text[:300]


def missing_database(settings: Settings) -> CliError:
    path = embedded_path(settings)
    folder = settings.data_dir.resolve().parent
    return CliError(
        f"no FlakeGuard database at {path}: start `flakeguard up` (or run `flakeguard migrate`) in "
        f"{folder}, or point at the folder where it runs with --home DIR, or set DATABASE_URL",
        ExitCode.UNAVAILABLE,
    )


async def read_revision(engine: AsyncEngine, settings: Settings) -> str | None:
    """The database's migration revision (None: never migrated); CliError when it cannot be reached."""
    import asyncio

    from flakeguard.store.migrate import current_revision

    where = describe(settings)
    hint = "DATABASE_URL" if settings.database_url is not None else "FLAKEGUARD_DATA_DIR"
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            return await current_revision(engine)
    except TimeoutError:
        raise CliError(
            f"the database at {where} did not answer within {CONNECT_TIMEOUT_S:.0f} s: is it running? "
            f"({hint})",
            ExitCode.UNAVAILABLE,
        ) from None
    except OSError as exc:
        raise CliError(
            f"cannot reach the database at {where}: {_reason(exc)} ({hint})", ExitCode.UNAVAILABLE
        ) from None
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError

        # asyncpg raises its own errors from connect (unknown database, role or password) unwrapped.
        if isinstance(exc, DBAPIError) or type(exc).__module__.startswith("asyncpg"):
            raise CliError(
                f"cannot use the database at {where}: {_reason(exc)} ({hint})", ExitCode.UNAVAILABLE
            ) from None
        raise


def schema_problem(revision: str | None, settings: Settings) -> CliError | None:
    """Why a database at `revision` cannot serve this FlakeGuard, or None when it is at the head."""
    from flakeguard.store.migrate import head_revision, known_revisions

    head = head_revision()
    if revision == head:
        return None
    where = describe(settings)
    if revision is None:
        message = (
            f"the database at {where} has no FlakeGuard tables yet: run `flakeguard migrate` "
            "(`flakeguard up` migrates too)"
        )
    elif revision in known_revisions():
        message = (
            f"the database at {where} is at migration {revision}, this FlakeGuard needs {head}: "
            "run `flakeguard migrate`"
        )
    else:
        message = (
            f"the database at {where} was migrated by a newer FlakeGuard (revision {revision}); "
            "upgrade FlakeGuard to use it"
        )
    return CliError(message, ExitCode.UNAVAILABLE)


async def check_database(engine: AsyncEngine, settings: Settings) -> None:
    """Reachable and at the head revision, or CliError saying what to do."""
    problem = schema_problem(await read_revision(engine, settings), settings)
    if problem is not None:
        raise problem


def create_engine_for(settings: Settings) -> AsyncEngine:
    from flakeguard.store.db import create_engine

    return create_engine(settings.async_database_url, connect_timeout_s=CONNECT_TIMEOUT_S)


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The database, checked (exists, answers, migrated), or CliError; never creates anything."""
    from flakeguard.store.db import session_factory

    path = embedded_path(settings)
    if path is not None and not path.exists():
        raise missing_database(settings)
    engine = create_engine_for(settings)
    try:
        await check_database(engine, settings)
        yield Database(settings, session_factory(engine))
    finally:
        await engine.dispose()


def migrate_database(settings: Settings) -> tuple[str | None, str]:
    """Bring the database to the head revision (creating the embedded SQLite file when missing).

    Returns (revision before, revision after); equal when there was nothing to do. CliError when the
    database cannot be reached or was migrated by a newer FlakeGuard."""
    import asyncio

    from flakeguard.store.migrate import head_revision, known_revisions, upgrade

    path = embedded_path(settings)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)

    async def revision() -> str | None:
        engine = create_engine_for(settings)
        try:
            return await read_revision(engine, settings)
        finally:
            await engine.dispose()

    before = asyncio.run(revision())
    head = head_revision()
    if before == head:
        return before, head
    if before is not None and before not in known_revisions():
        problem = schema_problem(before, settings)
        assert problem is not None
        raise problem
    upgrade(settings.async_database_url)
    return before, head


def prepare_database(settings: Settings, *, create_embedded: bool) -> None:
    """Before a command opens its own engine: with `create_embedded`, the embedded SQLite file is
    created and migrated as needed; any other database must exist, answer and be migrated."""
    import asyncio

    if create_embedded and embedded_path(settings) is not None:
        migrate_database(settings)
        return

    async def check() -> None:
        async with open_database(settings):
            pass

    asyncio.run(check())
