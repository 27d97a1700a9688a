"""`flakeguard recompute`: re-score a repository in this process, with a progress bar.

`build_job` is shared with `flakeguard enqueue recompute`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from flakeguard.cli.database import open_database
from flakeguard.cli.errors import ExitCode
from flakeguard.cli.support import (
    console,
    err_console,
    fail,
    in_flag_terms,
    run,
    settings_or_exit,
    split_repo,
)

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

app = typer.Typer()
# Payload fields (the queue's wire names) and the options that set them, for error messages.
FLAGS = {
    "recomputeScope.type": "--scope",
    "recomputeScope.patterns": "--pattern",
    "recomputeScope.testIds": "--test",
    "recomputeScope.lookbackDays": "--lookback-days",
    "lookbackDays": "--lookback-days",
    "options.batchSize": "--batch-size",
    "options.updateQuarantineStatus": "--update-quarantine",
    "batchSize": "--batch-size",
    "repository.owner": "--repo",
    "repository.repo": "--repo",
}


def build_job(
    repo: str,
    scope: str,
    patterns: list[str] | None,
    tests: list[str] | None,
    lookback_days: int,
    batch_size: int,
    update_quarantine: bool,
) -> TestsRecomputeJob:
    from flakeguard.jobs.errors import PermanentError
    from flakeguard.jobs.payloads import PayloadError, TestsRecomputeJob, parse_payload
    from flakeguard.pipeline.recompute import validate_scope

    owner, name = split_repo(repo)
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
        fail(in_flag_terms(str(exc), FLAGS), ExitCode.USAGE)
    return job


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
        fail(str(exc))
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
