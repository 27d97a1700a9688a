"""`flakeguard recompute` (in-process, with a progress bar) and `flakeguard enqueue recompute`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flakeguard.commands.database import open_database

if TYPE_CHECKING:
    from flakeguard.jobs.payloads import TestsRecomputeJob

Scope = Annotated[str, typer.Option("--scope", help="all, test_pattern, class_pattern or specific_tests")]
Patterns = Annotated[
    list[str] | None, typer.Option("--pattern", help="Glob (repeatable): test name/key or classname")
]
Tests = Annotated[list[str] | None, typer.Option("--test", help="Test case id or full key (repeatable)")]
LookbackDays = Annotated[int, typer.Option("--lookback-days", min=1, max=365, help="Days of history")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, max=100_000, help="Tests per transaction")]
UpdateQuarantine = Annotated[
    bool, typer.Option("--update-quarantine", help="Apply automatic quarantine and release")
]


def build_job(
    repo: str,
    scope: str,
    patterns: list[str] | None,
    tests: list[str] | None,
    lookback_days: int,
    batch_size: int,
    update_quarantine: bool,
) -> TestsRecomputeJob:
    from flakeguard.cli import _split_repo, err_console
    from flakeguard.jobs.errors import PermanentError
    from flakeguard.jobs.payloads import PayloadError, TestsRecomputeJob, parse_payload
    from flakeguard.pipeline.recompute import validate_scope

    owner, name = _split_repo(repo)
    if scope == "all" and tests:
        scope = "specific_tests"
    elif scope == "all" and patterns:
        scope = "test_pattern"
    data: dict[str, Any] = {
        "repository": {"owner": owner, "repo": name},
        "recomputeScope": {
            "type": scope,
            "patterns": patterns or [],
            "lookbackDays": lookback_days,
            "testIds": tests or [],
        },
        "options": {"batchSize": batch_size, "updateQuarantineStatus": update_quarantine},
    }
    try:
        job = parse_payload(TestsRecomputeJob, data)
        validate_scope(job.recompute_scope)
    except (PayloadError, PermanentError) as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    return job


def register(app: typer.Typer, enqueue_app: typer.Typer) -> None:
    """Adds this module's commands to the CLI."""

    @app.command("recompute")
    def recompute_command(
        repo: Annotated[str, typer.Option(help="OWNER/NAME")],
        scope: Scope = "all",
        pattern: Patterns = None,
        test: Tests = None,
        lookback_days: LookbackDays = 30,
        batch_size: BatchSize = 500,
        update_quarantine: UpdateQuarantine = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
    ) -> None:
        """Re-score a repository's tests now, in this process (DATABASE_URL), with a progress bar."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from flakeguard.cli import console, err_console, run, settings_or_exit
        from flakeguard.jobs.errors import PermanentError
        from flakeguard.pipeline.recompute import RecomputeResult, recompute_detailed

        settings = settings_or_exit()
        job = build_job(repo, scope, pattern, test, lookback_days, batch_size, update_quarantine)

        async def go() -> RecomputeResult:
            with Progress(
                TextColumn("[bold]recompute[/bold] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("tests"),
                TimeElapsedColumn(),
                console=err_console,
                transient=as_json,
                disable=not err_console.is_terminal and as_json,
            ) as bar:
                task = bar.add_task(job.repository.full_name, total=None)

                async def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                async with open_database(settings) as db:
                    return await recompute_detailed(db, job, progress=progress)

        try:
            result = run(go)
        except PermanentError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
        data = {
            "repository": job.repository.full_name,
            "scope": job.recompute_scope.type,
            **result.summary.as_dict(),
        }
        if as_json:
            console.print_json(data=data)
            return
        statuses = ", ".join(f"{v} {k}" for k, v in sorted(result.summary.by_status.items())) or "no tests"
        console.print(
            f"recomputed {result.summary.tests} tests of {job.repository.full_name}: {statuses}; "
            f"quarantined {result.summary.quarantined}, released {result.summary.released}"
        )

    @enqueue_app.command("recompute")
    def enqueue_recompute(
        repo: Annotated[str, typer.Option(help="OWNER/NAME")],
        scope: Scope = "all",
        pattern: Patterns = None,
        test: Tests = None,
        lookback_days: LookbackDays = 30,
        batch_size: BatchSize = 500,
        update_quarantine: UpdateQuarantine = False,
    ) -> None:
        """Enqueue a tests:recompute job (prints the queue and job id; progress is the job's progress)."""
        from flakeguard.cli import _with_producer, console, run, settings_or_exit
        from flakeguard.jobs.names import QueueName

        settings = settings_or_exit()
        job = build_job(repo, scope, pattern, test, lookback_days, batch_size, update_quarantine)
        queued = run(lambda: _with_producer(settings, lambda p: p.recompute(job)))
        console.print(json.dumps({"queue": QueueName.TESTS_RECOMPUTE.value, "id": queued.id}))
