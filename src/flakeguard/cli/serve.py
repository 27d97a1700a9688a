"""`flakeguard migrate`, `flakeguard up` and `flakeguard worker`: setting up and running the system."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flakeguard.cli.errors import ExitCode
from flakeguard.cli.support import api_token_for, console, fail, parse_queues, settings_or_exit

if TYPE_CHECKING:
    from flakeguard.config import Settings
    from flakeguard.embedded_redis import EmbeddedRedis

app = typer.Typer()
Queues = Annotated[str | None, typer.Option(help="Comma-separated queues to work (default: all four).")]


def check_ports_free(settings: Settings) -> None:
    """Refuse at once, naming the variable, when a port to serve on is taken (uvicorn would log an
    error and leave the workers running without health or metrics)."""
    ports = [("HEALTH_CHECK_PORT", settings.health_check_port)]
    if settings.metrics_enabled:
        ports.append(("METRICS_PORT", settings.metrics_port))
    for variable, port in ports:
        if port == 0:
            continue
        with socket.socket(socket.AF_INET6 if ":" in settings.bind_host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((settings.bind_host, port))
            except OSError as exc:
                fail(
                    f"port {port} on {settings.bind_host} ({variable}) is not free: {exc.strerror}; "
                    f"stop what listens there or set {variable}",
                    ExitCode.USAGE,
                )


@app.command()
def migrate() -> None:
    """Apply database migrations (DATABASE_URL, or the embedded SQLite file)."""
    settings = settings_or_exit()
    from flakeguard.cli.database import describe, migrate_database

    before, after = migrate_database(settings)
    if before == after:
        console.print(f"database {describe(settings)} is up to date (migration {after})")
    else:
        console.print(f"database {describe(settings)} migrated to head ({before or 'empty'} -> {after})")


@app.command()
def up(queues: Queues = None) -> None:
    """Start everything: migrations, Redis (embedded when REDIS_URL is unset), workers, health, metrics."""
    settings = settings_or_exit(discover=False, serving=True)
    import asyncio

    from flakeguard.cli.database import migrate_database
    from flakeguard.embedded_redis import EmbeddedRedis
    from flakeguard.instance import AlreadyRunning, Instance, InstanceLock
    from flakeguard.logging import get_logger
    from flakeguard.runtime import run_process

    log = get_logger("flakeguard.up")
    queue_names = parse_queues(queues)
    lock = InstanceLock(settings.data_dir)
    try:
        lock.acquire()  # before anything else: a second `up` must not touch the first one's files
    except AlreadyRunning as exc:
        fail(str(exc))
    embedded: EmbeddedRedis | None = None
    pidfile = settings.data_dir / "flakeguard.pid"
    try:
        check_ports_free(settings)
        before, after = migrate_database(settings)
        migrations = (
            f"up to date ({after})" if before == after else f"migrated {before or 'empty'} -> {after}"
        )
        redis_url = settings.redis_url
        if redis_url is None and not settings.redis_cluster_enabled:
            embedded = EmbeddedRedis(settings.data_dir / "redis")
            redis_url = embedded.start()
            log.info("embedded_redis_started", socket=str(embedded.socket))
        token = api_token_for(settings)
        if settings.api_token is None:
            log.info("api_token_in_file", path=str(settings.data_dir / "api-token"))
        lock.publish(
            Instance(
                pid=os.getpid(),
                redis_url=redis_url,
                database_url=settings.database_url,
                health_port=settings.health_check_port,
                metrics_port=settings.metrics_port if settings.metrics_enabled else None,
                started_at=time.time(),
            )
        )
        pidfile.write_text(f"{os.getpid()}\n")
        started = {"migrations": migrations, "redis_embedded": embedded is not None}
        code = asyncio.run(
            run_process(settings, redis_url=redis_url, queues=queue_names, api_token=token, started=started)
        )
    finally:
        if embedded is not None:
            embedded.stop()
            log.info("embedded_redis_stopped")
        pidfile.unlink(missing_ok=True)
        lock.release()
    raise typer.Exit(code)


@app.command()
def worker(
    queues: Queues = None,
    reload: Annotated[
        bool, typer.Option("--reload", help="Development: restart when a source file changes.")
    ] = False,
    reload_dir: Annotated[
        list[Path] | None, typer.Option(help="With --reload: directories to watch (default: the package).")
    ] = None,
) -> None:
    """Run the workers (REDIS_URL and DATABASE_URL required), serving health and metrics."""
    settings = settings_or_exit(serving=True)
    import asyncio

    from flakeguard.runtime import run_process

    if settings.redis_url is None and not settings.redis_cluster_enabled:
        fail(
            "REDIS_URL: not set, and no `flakeguard up` runs in this folder "
            "(use `flakeguard up` for an embedded Redis)",
            ExitCode.USAGE,
        )
    if reload:
        from flakeguard.reload import PACKAGE_DIR, run_with_reload

        args = ["worker", *(["--queues", queues] if queues else [])]
        raise typer.Exit(run_with_reload(args, reload_dir or [PACKAGE_DIR]))
    queue_names = parse_queues(queues)
    check_ports_free(settings)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    code = asyncio.run(
        run_process(settings, redis_url=settings.redis_url, queues=queue_names, api_token=token)
    )
    raise typer.Exit(code)
