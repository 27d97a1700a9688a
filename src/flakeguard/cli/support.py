"""What every command shares: the consoles, settings, the event loop, argument parsing, the queues.

Command modules import from here; nothing here imports a command module. Heavy modules (settings,
SQLAlchemy, bullmq) are imported inside the functions that need them, so `flakeguard --help` and
each command's own start-up stay fast.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from flakeguard.config import Settings
    from flakeguard.jobs.names import QueueName

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


def settings_or_exit() -> Settings:
    from flakeguard.config import ConfigError, load_settings
    from flakeguard.logging import configure_logging

    try:
        settings = load_settings()
    except ConfigError as exc:
        err_console.print(f"[red]flakeguard: {exc}[/red]")
        raise typer.Exit(2) from None
    configure_logging(settings.log_level)
    return settings


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    import asyncio

    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def parse_queues(value: str | None) -> list[QueueName] | None:
    from flakeguard.jobs.names import QueueName

    if not value:
        return None
    names = []
    for part in value.split(","):
        try:
            names.append(QueueName(part.strip()))
        except ValueError:
            err_console.print(f"[red]unknown queue {part.strip()!r}; known: {', '.join(QueueName)}[/red]")
            raise typer.Exit(2) from None
    return names


def split_repo(value: str) -> tuple[str, str]:
    owner, sep, name = value.partition("/")
    if not sep or not owner or not name or "/" in name:
        err_console.print(f"[red]--repo must be OWNER/NAME, got {value!r}[/red]")
        raise typer.Exit(2)
    return owner, name


def drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    return value


def api_token_for(settings: Settings) -> str:
    """FLAKEGUARD_API_TOKEN, or a generated one kept in the data dir (readable only by its owner)."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    path = settings.data_dir / "api-token"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


async def with_producer(settings: Settings, fn: Callable[[Any], Awaitable[T]]) -> T:
    from flakeguard.jobs.producer import JobProducer
    from flakeguard.services import redis_target_from, retry_policy_from

    producer = JobProducer(
        redis_target_from(settings, settings.redis_url),
        retry_policy_from(settings),
        keep_completed=settings.remove_on_complete,
        keep_failed=settings.remove_on_fail,
    )
    try:
        return await fn(producer)
    finally:
        await producer.close()


async def with_sessions(settings: Settings, fn: Callable[[Any], Awaitable[T]]) -> T:
    from flakeguard.cli.database import open_database

    async with open_database(settings) as db, db.sessions.begin() as session:
        return await fn(session)
