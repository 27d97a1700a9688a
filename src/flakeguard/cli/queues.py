"""`flakeguard queues`: job counts, dead letters, pause and resume."""

from __future__ import annotations

from typing import Annotated

import typer

from flakeguard.cli.support import console, fail, parse_queues, run, settings_or_exit, with_producer

app = typer.Typer(help="Inspect and manage the queues.", no_args_is_help=True)


@app.command("list")
def queues_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Job counts per queue and state."""
    settings = settings_or_exit()
    from rich.table import Table

    counts: dict[str, dict[str, int]] = run(lambda: with_producer(settings, lambda p: p.counts()))
    if as_json:
        console.print_json(data=counts)
        return
    # One column per queue, one row per state: queue names stay whole at 80 columns.
    states = list(next(iter(counts.values())).keys())
    table = Table("state", title="FlakeGuard queues")
    for queue in counts:
        table.add_column(queue, justify="right", no_wrap=True)
    for state in states:
        table.add_row(state, *(f"{row[state]:,}" for row in counts.values()))
    console.print(table)


@app.command("retry-failed")
def queues_retry_failed(queue: Annotated[str, typer.Argument(help="Queue name, e.g. runs:ingest")]) -> None:
    """Move every failed job of a queue (its dead letters) back to waiting, each with all its attempts."""
    settings = settings_or_exit()
    from flakeguard.jobs.dead_letters import retry_all_failed

    name = (parse_queues(queue) or [])[0]
    count = run(lambda: with_producer(settings, lambda p: retry_all_failed(p.queue(name))))
    console.print(f"retried {count} failed job(s) of {name.value}")


@app.command("retry")
def queues_retry(
    queue: Annotated[str, typer.Argument(help="Queue name, e.g. runs:ingest")],
    job_id: Annotated[str, typer.Argument(help="The failed job's id")],
) -> None:
    """Move one failed job (a dead letter) back to waiting, with all its attempts."""
    settings = settings_or_exit()
    from flakeguard.jobs.dead_letters import NotFailed, retry_job

    name = (parse_queues(queue) or [])[0]
    try:
        found = run(lambda: with_producer(settings, lambda p: retry_job(p.queue(name), job_id)))
    except NotFailed as exc:
        fail(str(exc))
    if not found:
        fail(f"no job {job_id!r} in {name.value} (`flakeguard queues list` shows the counts)")
    console.print(f"retried {job_id} of {name.value}")


@app.command("pause")
def queues_pause(queue: str) -> None:
    """Pause a queue globally (jobs in flight finish)."""
    settings = settings_or_exit()
    name = (parse_queues(queue) or [])[0]
    run(lambda: with_producer(settings, lambda p: p.queue(name).pause()))
    console.print(f"{name.value} paused")


@app.command("resume")
def queues_resume(queue: str) -> None:
    """Resume a paused queue."""
    settings = settings_or_exit()
    name = (parse_queues(queue) or [])[0]
    run(lambda: with_producer(settings, lambda p: p.queue(name).resume()))
    console.print(f"{name.value} resumed")
