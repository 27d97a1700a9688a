"""`flakeguard loadtest`: the whole pipeline under load, offline, with throughput figures."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from flakeguard.cli.support import console, err_console, settings_or_exit

app = typer.Typer()


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
    import asyncio

    from flakeguard.logging import configure_logging

    if "LOG_LEVEL" not in os.environ:
        # one info line per job would bury the result
        configure_logging("warn", fmt=settings.effective_log_format)
    from rich.progress import Progress
    from rich.table import Table

    from flakeguard.cli.database import migrate_database
    from flakeguard.embedded_redis import EmbeddedRedis
    from flakeguard.loadtest import run_loadtest

    migrate_database(settings)
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
