"""Engine and session factory for PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

# Server-side TCP keepalives: when a worker vanishes in a network partition (no FIN, no RST), its open
# transaction (ingest holds one per run attempt) would keep its row locks until the OS default of two
# hours; with these PostgreSQL drops the orphaned session about a minute later and the job's re-run,
# waiting on those locks, goes on. Per-session settings, sent in the start-up packet.
SERVER_KEEPALIVES = {
    "tcp_keepalives_idle": "30",
    "tcp_keepalives_interval": "10",
    "tcp_keepalives_count": "3",
}


def create_engine(url: str, *, connect_timeout_s: float | None = None) -> AsyncEngine:
    """`connect_timeout_s` bounds each new PostgreSQL connection (asyncpg's own default is 60 s)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _enable_sqlite_pragmas(engine.sync_engine)
        return engine
    connect_args: dict[str, object] = {"server_settings": SERVER_KEEPALIVES}
    if connect_timeout_s is not None:
        connect_args["timeout"] = connect_timeout_s
    return create_async_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args=connect_args
    )


def describe_database_url(url: str) -> str:
    """For messages and logs: the SQLite file, or scheme://host:port/database; never a user or password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database or ":memory:")
    host = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return f"{parsed.get_backend_name()}://{host}/{parsed.database}"


def _enable_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: object, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
