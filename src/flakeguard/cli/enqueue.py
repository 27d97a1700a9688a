"""`flakeguard enqueue`: put a runs:ingest or tests:recompute job on its queue."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from flakeguard.cli.errors import ExitCode
from flakeguard.cli.recompute import (
    BatchSize,
    LookbackDays,
    Patterns,
    Scope,
    Tests,
    UpdateQuarantine,
    build_job,
)
from flakeguard.cli.support import (
    console,
    drop_none,
    fail,
    run,
    settings_or_exit,
    split_repo,
    with_producer,
)

app = typer.Typer(help="Put a job on a queue.", no_args_is_help=True)


@app.command("ingest")
def enqueue_ingest(
    repo: Annotated[str, typer.Option(help="OWNER/NAME")],
    run_id: Annotated[int, typer.Option("--run-id", help="GitHub workflow run id")],
    installation_id: Annotated[int | None, typer.Option(help="GitHub App installation id")] = None,
    attempt: Annotated[int | None, typer.Option(help="Run attempt (default: the latest)")] = None,
    priority: Annotated[str, typer.Option(help="critical, high, normal or low")] = "normal",
) -> None:
    """Enqueue a runs:ingest job."""
    settings = settings_or_exit()
    from flakeguard.jobs.names import QueueName
    from flakeguard.jobs.payloads import PayloadError, RunsIngestJob, parse_payload

    owner, name = split_repo(repo)
    data: dict[str, Any] = {
        "workflowRunId": run_id,
        "repository": {"owner": owner, "repo": name, "installationId": installation_id},
        "priority": priority,
        "metadata": {"runAttempt": attempt, "triggeredBy": "manual"},
    }
    try:
        payload = parse_payload(RunsIngestJob, drop_none(data))
    except PayloadError as exc:
        fail(str(exc), ExitCode.USAGE)
    job = run(lambda: with_producer(settings, lambda p: p.ingest(payload)))
    console.print(json.dumps({"queue": QueueName.RUNS_INGEST.value, "id": job.id}))


@app.command("recompute")
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
    from flakeguard.jobs.names import QueueName

    settings = settings_or_exit()
    job = build_job(repo, scope, pattern, test, lookback_days, batch_size, update_quarantine)
    queued = run(lambda: with_producer(settings, lambda p: p.recompute(job)))
    console.print(json.dumps({"queue": QueueName.TESTS_RECOMPUTE.value, "id": queued.id}))
