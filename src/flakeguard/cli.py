"""The `flakeguard` command line."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from flakeguard.commands import ingest as ingest_commands
from flakeguard.commands import quarantine as quarantine_commands
from flakeguard.commands import recompute as recompute_commands
from flakeguard.commands import report as report_commands
from flakeguard.config import ConfigError, Settings, load_settings, production_problems
from flakeguard.jobs.names import QueueName
from flakeguard.logging import configure_logging, get_logger

app = typer.Typer(help="FlakeGuard: finds flaky tests in GitHub Actions CI.", no_args_is_help=True)
enqueue_app = typer.Typer(help="Put a job on a queue.", no_args_is_help=True)
queues_app = typer.Typer(help="Inspect and manage the queues.", no_args_is_help=True)
repos_app = typer.Typer(
    help="Repositories FlakeGuard tracks (polling covers the active ones).", no_args_is_help=True
)
app.add_typer(enqueue_app, name="enqueue")
app.add_typer(queues_app, name="queues")
app.add_typer(repos_app, name="repos")

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


def fail_start(message: str) -> typer.Exit:
    """One line on stderr (never wrapped, no traceback); exit code 2 marks a configuration error."""
    typer.echo(f"flakeguard: {message}", err=True)
    return typer.Exit(2)


def settings_or_exit(*, serving: bool = False) -> Settings:
    """Settings from the environment, or exit 2 naming each bad variable. `serving` processes (worker,
    up) also refuse what production must not run without."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail_start(str(exc)) from None
    if serving and (problems := production_problems(settings)):
        raise fail_start("invalid configuration: " + "; ".join(problems))
    configure_logging(settings.log_level, fmt=settings.effective_log_format)
    return settings


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def parse_queues(value: str | None) -> list[QueueName] | None:
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


@app.command()
def migrate() -> None:
    """Apply database migrations (DATABASE_URL, or the embedded SQLite file)."""
    settings = settings_or_exit()
    from flakeguard.store.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.async_database_url)
    console.print("database migrated to head")


@app.command()
def up(
    queues: Annotated[
        str | None, typer.Option(help="Comma-separated queues to work (default: all four).")
    ] = None,
) -> None:
    """Start everything: migrations, Redis (embedded when REDIS_URL is unset), workers, health, metrics."""
    settings = settings_or_exit(serving=True)
    from flakeguard.embedded_redis import EmbeddedRedis
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
def worker(
    queues: Annotated[
        str | None, typer.Option(help="Comma-separated queues to work (default: all four).")
    ] = None,
    reload: Annotated[
        bool, typer.Option("--reload", help="Development: restart when a source file changes.")
    ] = False,
    reload_dir: Annotated[
        list[Path] | None, typer.Option(help="With --reload: directories to watch (default: the package).")
    ] = None,
) -> None:
    """Run the workers (REDIS_URL and DATABASE_URL required), serving health and metrics."""
    settings = settings_or_exit(serving=True)
    from flakeguard.runtime import run_process

    if settings.redis_url is None and not settings.redis_cluster_enabled:
        raise fail_start("REDIS_URL: not set (use `flakeguard up` for an embedded Redis)")
    if reload:
        from flakeguard.reload import PACKAGE_DIR, run_with_reload

        args = ["worker", *(["--queues", queues] if queues else [])]
        raise typer.Exit(run_with_reload(args, reload_dir or [PACKAGE_DIR]))
    token = settings.api_token.get_secret_value() if settings.api_token else None
    code = asyncio.run(
        run_process(settings, redis_url=settings.redis_url, queues=parse_queues(queues), api_token=token)
    )
    raise typer.Exit(code)


async def _with_producer(settings: Settings, fn: Callable[[Any], Awaitable[T]]) -> T:
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


def _split_repo(value: str) -> tuple[str, str]:
    owner, sep, name = value.partition("/")
    if not sep or not owner or not name or "/" in name:
        err_console.print(f"[red]--repo must be OWNER/NAME, got {value!r}[/red]")
        raise typer.Exit(2)
    return owner, name


@enqueue_app.command("ingest")
def enqueue_ingest(
    repo: Annotated[str, typer.Option(help="OWNER/NAME")],
    run_id: Annotated[int, typer.Option("--run-id", help="GitHub workflow run id")],
    installation_id: Annotated[int | None, typer.Option(help="GitHub App installation id")] = None,
    attempt: Annotated[int | None, typer.Option(help="Run attempt (default: the latest)")] = None,
    priority: Annotated[str, typer.Option(help="critical, high, normal or low")] = "normal",
) -> None:
    """Enqueue a runs:ingest job."""
    settings = settings_or_exit()
    from flakeguard.jobs.payloads import PayloadError, RunsIngestJob, parse_payload

    owner, name = _split_repo(repo)
    data: dict[str, Any] = {
        "workflowRunId": run_id,
        "repository": {"owner": owner, "repo": name, "installationId": installation_id},
        "priority": priority,
        "metadata": {"runAttempt": attempt, "triggeredBy": "manual"},
    }
    try:
        payload = parse_payload(RunsIngestJob, _drop_none(data))
    except PayloadError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    job = run(lambda: _with_producer(settings, lambda p: p.ingest(payload)))
    console.print(json.dumps({"queue": QueueName.RUNS_INGEST.value, "id": job.id}))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


@queues_app.command("list")
def queues_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Job counts per queue and state."""
    settings = settings_or_exit()
    counts: dict[str, dict[str, int]] = run(lambda: _with_producer(settings, lambda p: p.counts()))
    if as_json:
        console.print_json(data=counts)
        return
    states = list(next(iter(counts.values())).keys())
    table = Table("queue", *states)
    for queue, row in counts.items():
        table.add_row(queue, *(str(row[s]) for s in states))
    console.print(table)


@queues_app.command("retry-failed")
def queues_retry_failed(queue: Annotated[str, typer.Argument(help="Queue name, e.g. runs:ingest")]) -> None:
    """Move every failed job of a queue (its dead letters) back to waiting, each with all its attempts."""
    settings = settings_or_exit()
    from flakeguard.jobs.dead_letters import retry_all_failed

    name = (parse_queues(queue) or [])[0]
    count = run(lambda: _with_producer(settings, lambda p: retry_all_failed(p.queue(name))))
    console.print(f"retried {count} failed job(s) of {name.value}")


@queues_app.command("retry")
def queues_retry(
    queue: Annotated[str, typer.Argument(help="Queue name, e.g. runs:ingest")],
    job_id: Annotated[str, typer.Argument(help="The failed job's id")],
) -> None:
    """Move one failed job (a dead letter) back to waiting, with all its attempts."""
    settings = settings_or_exit()
    from flakeguard.jobs.dead_letters import NotFailed, retry_job

    name = (parse_queues(queue) or [])[0]
    try:
        found = run(lambda: _with_producer(settings, lambda p: retry_job(p.queue(name), job_id)))
    except NotFailed as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if not found:
        err_console.print(f"[red]no job {job_id!r} in {name.value}[/red]")
        raise typer.Exit(1)
    console.print(f"retried {job_id} of {name.value}")


@queues_app.command("pause")
def queues_pause(queue: str) -> None:
    """Pause a queue globally (jobs in flight finish)."""
    settings = settings_or_exit()
    name = (parse_queues(queue) or [])[0]
    run(lambda: _with_producer(settings, lambda p: p.queue(name).pause()))
    console.print(f"{name.value} paused")


@queues_app.command("resume")
def queues_resume(queue: str) -> None:
    """Resume a paused queue."""
    settings = settings_or_exit()
    name = (parse_queues(queue) or [])[0]
    run(lambda: _with_producer(settings, lambda p: p.queue(name).resume()))
    console.print(f"{name.value} resumed")


async def _with_sessions(settings: Settings, fn: Callable[[Any], Awaitable[T]]) -> T:
    from flakeguard.commands.database import open_database

    async with open_database(settings) as db, db.sessions.begin() as session:
        return await fn(session)


@repos_app.command("list")
def repos_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Tracked repositories."""
    settings = settings_or_exit()
    from sqlalchemy import select

    from flakeguard.store.models import Repository

    async def fetch(session: Any) -> list[dict[str, Any]]:
        rows = (
            await session.execute(select(Repository).order_by(Repository.owner, Repository.name))
        ).scalars()
        return [
            {
                "repository": r.full_name,
                "installationId": r.installation_id,
                "defaultBranch": r.default_branch,
                "active": r.active,
            }
            for r in rows
        ]

    repos = run(lambda: _with_sessions(settings, fetch))
    if as_json:
        console.print_json(data=repos)
        return
    table = Table("repository", "installation", "default branch", "active")
    for r in repos:
        table.add_row(
            r["repository"], str(r["installationId"] or "-"), r["defaultBranch"] or "-", str(r["active"])
        )
    console.print(table)


@repos_app.command("add")
def repos_add(
    repo: Annotated[str, typer.Argument(help="OWNER/NAME")],
    installation_id: Annotated[int | None, typer.Option(help="GitHub App installation id")] = None,
    default_branch: Annotated[str | None, typer.Option(help="The default branch (protected)")] = None,
) -> None:
    """Track a repository (polling then looks for its runs)."""
    settings = settings_or_exit()
    from flakeguard.store.repository import upsert_repository

    owner, name = _split_repo(repo)

    async def add(session: Any) -> None:
        row = await upsert_repository(
            session, owner, name, installation_id=installation_id, default_branch=default_branch
        )
        row.active = True

    run(lambda: _with_sessions(settings, add))
    console.print(f"tracking {owner}/{name}")


@repos_app.command("remove")
def repos_remove(repo: Annotated[str, typer.Argument(help="OWNER/NAME")]) -> None:
    """Stop polling a repository; its history stays."""
    settings = settings_or_exit()
    from flakeguard.store.repository import get_repository

    owner, name = _split_repo(repo)

    async def deactivate(session: Any) -> bool:
        row = await get_repository(session, owner, name)
        if row is None:
            return False
        row.active = False
        return True

    if not run(lambda: _with_sessions(settings, deactivate)):
        err_console.print(f"[red]{owner}/{name} is not tracked[/red]")
        raise typer.Exit(1)
    console.print(f"{owner}/{name} is no longer polled")


@app.command()
def loadtest(
    runs: Annotated[
        int,
        typer.Option(
            "--runs", "--jobs", min=1, max=100_000, help="Workflow runs to push through (alias: --jobs)"
        ),
    ] = 100,
    tests_per_run: Annotated[int, typer.Option(min=1, max=100_000, help="Tests in each run's reports")] = 200,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=500, help="Default: WORKER_CONCURRENCY")
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Give up after this many seconds")] = 600.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The whole pipeline under load, offline: a generated repository on a loopback fake GitHub, ingested
    and analysed by an in-process worker against this deployment's database and Redis (jobs and rows of
    its own, removed afterwards). Prints throughput and enqueue-to-analysis latency."""
    settings = settings_or_exit()
    if "LOG_LEVEL" not in os.environ:
        # one info line per job would bury the result
        configure_logging("warn", fmt=settings.effective_log_format)
    from rich.progress import Progress

    from flakeguard.embedded_redis import EmbeddedRedis
    from flakeguard.loadtest import run_loadtest
    from flakeguard.store.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.async_database_url)
    embedded = None
    redis_url = settings.redis_url
    if redis_url is None and not settings.redis_cluster_enabled:
        embedded = EmbeddedRedis(settings.data_dir / "loadtest-redis")
        redis_url = embedded.start()
    try:
        with Progress(console=err_console, transient=True, disable=as_json) as bar:
            task = bar.add_task("runs analysed", total=runs)
            result = asyncio.run(
                run_loadtest(
                    settings,
                    runs=runs,
                    tests_per_run=tests_per_run,
                    concurrency=concurrency or settings.worker_concurrency,
                    timeout_s=timeout,
                    redis_url=redis_url,
                    progress=lambda done, total: bar.update(task, completed=done),
                )
            )
    finally:
        if embedded is not None:
            embedded.stop()
    data = result.as_dict()
    if as_json:
        console.print_json(data=data)
    else:
        table = Table("measure", "value", title="FlakeGuard load test")
        latency = data["latencySeconds"]
        for name, value in (
            ("runs x tests", f"{runs} x {tests_per_run} (concurrency {data['concurrency']})"),
            ("executions stored", f"{data['executions']:,}"),
            ("wall time", f"{data['seconds']:.1f} s"),
            ("runs / s", f"{data['runsPerSecond']:.2f}"),
            ("executions / s", f"{data['executionsPerSecond']:,.0f}"),
            (
                "enqueue to analysis, p50 / p95 / max",
                f"{latency['p50']:.2f} / {latency['p95']:.2f} / {latency['max']:.2f} s",
            ),
            ("failed jobs", str(data["failedJobs"])),
        ):
            table.add_row(name, value)
        console.print(table)
    if result.failed_jobs or len(result.latencies_s) < runs:
        raise typer.Exit(1)


for _module in (ingest_commands, quarantine_commands, recompute_commands, report_commands):
    _module.register(app, enqueue_app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
