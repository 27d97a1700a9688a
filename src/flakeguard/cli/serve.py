"""`flakeguard migrate`, `flakeguard up` and `flakeguard worker`: setting up and running the system."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from flakeguard.cli.support import api_token_for, console, err_console, parse_queues, settings_or_exit

if TYPE_CHECKING:
    from flakeguard.embedded_redis import EmbeddedRedis

app = typer.Typer()
Queues = Annotated[str | None, typer.Option(help="Comma-separated queues to work (default: all four).")]


@app.command()
def migrate() -> None:
    """Apply database migrations (DATABASE_URL, or the embedded SQLite file)."""
    settings = settings_or_exit()
    from flakeguard.store.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.async_database_url)
    console.print("database migrated to head")


@app.command()
def up(queues: Queues = None) -> None:
    """Start everything: migrations, Redis (embedded when REDIS_URL is unset), workers, health, metrics."""
    settings = settings_or_exit()
    import asyncio

    from flakeguard.embedded_redis import EmbeddedRedis
    from flakeguard.logging import get_logger
    from flakeguard.runtime import run_process
    from flakeguard.store.migrate import upgrade

    log = get_logger("flakeguard.up")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.async_database_url)
    embedded: EmbeddedRedis | None = None
    redis_url = settings.redis_url
    if redis_url is None and not settings.redis_cluster_enabled:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        redis_url = embedded.start()
        log.info("embedded_redis_started", socket=str(embedded.socket))
    token = api_token_for(settings)
    if settings.api_token is None:
        log.info("api_token_in_file", path=str(settings.data_dir / "api-token"))
    pidfile = settings.data_dir / "flakeguard.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    try:
        code = asyncio.run(
            run_process(settings, redis_url=redis_url, queues=parse_queues(queues), api_token=token)
        )
    finally:
        if embedded is not None:
            embedded.stop()
            log.info("embedded_redis_stopped")
        pidfile.unlink(missing_ok=True)
    raise typer.Exit(code)


@app.command()
def worker(queues: Queues = None) -> None:
    """Run the workers (REDIS_URL and DATABASE_URL required), serving health and metrics."""
    settings = settings_or_exit()
    import asyncio

    from flakeguard.runtime import run_process

    if settings.redis_url is None and not settings.redis_cluster_enabled:
        err_console.print(
            "[red]flakeguard worker: REDIS_URL is not set (use `flakeguard up` for embedded)[/red]"
        )
        raise typer.Exit(2)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    code = asyncio.run(
        run_process(settings, redis_url=settings.redis_url, queues=parse_queues(queues), api_token=token)
    )
    raise typer.Exit(code)
