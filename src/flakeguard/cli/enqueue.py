"""`flakeguard enqueue`: put a runs:ingest or tests:recompute job on its queue."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

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
    in_flag_terms,
    run,
    settings_or_exit,
    split_repo,
    with_producer,
)

if TYPE_CHECKING:
    from bullmq import Job

    from flakeguard.config import Settings
    from flakeguard.jobs.payloads import RunsIngestJob
    from flakeguard.jobs.producer import JobProducer

app = typer.Typer(help="Put a job on a queue.", no_args_is_help=True)
GITHUB_CHECK_TIMEOUT_S = 10.0
INGEST_FLAGS = {
    "workflowRunId": "--run-id",
    "repository.owner": "--repo",
    "repository.repo": "--repo",
    "repository.installationId": "--installation-id",
    "metadata.runAttempt": "--attempt",
    "priority": "--priority",
}


async def unchecked_run(settings: Settings, payload: RunsIngestJob) -> str | None:
    """Asks GitHub for the run before it is enqueued. None: it exists. A reason: it could not be
    checked (enqueue anyway). CliError: GitHub says there is no such run, or the App cannot see it."""
    import asyncio

    from flakeguard.github.errors import GitHubError, NotFound
    from flakeguard.github.provider import GitHubProvider
    from flakeguard.jobs.errors import PermanentError

    ref = payload.repository
    attempt = payload.metadata.run_attempt if payload.metadata else None
    provider = GitHubProvider.from_settings(settings)
    if not provider.configured:
        return "GitHub is not configured here (GITHUB_APP_ID and GITHUB_PRIVATE_KEY, or GITHUB_TOKEN)"
    try:
        async with asyncio.timeout(GITHUB_CHECK_TIMEOUT_S):
            client = await provider.client_for(ref.owner, ref.repo, ref.installation_id)
            await client.get_workflow_run(ref.owner, ref.repo, payload.workflow_run_id, attempt)
    except NotFound:
        which = f"run {payload.workflow_run_id}" + (f" attempt {attempt}" if attempt else "")
        fail(f"GitHub has no {which} in {ref.owner}/{ref.repo}; nothing was enqueued")
    except PermanentError as exc:
        fail(f"{exc}; nothing was enqueued")
    except TimeoutError:
        return f"GitHub did not answer within {GITHUB_CHECK_TIMEOUT_S:.0f} s"
    except (GitHubError, OSError) as exc:
        return f"GitHub answered {type(exc).__name__}: {exc}"
    finally:
        await provider.aclose()
    return None


@app.command("ingest")
def enqueue_ingest(
    repo: Annotated[str, typer.Option(help="OWNER/NAME")],
    run_id: Annotated[int, typer.Option("--run-id", help="GitHub workflow run id")],
    installation_id: Annotated[int | None, typer.Option(help="GitHub App installation id")] = None,
    attempt: Annotated[int | None, typer.Option(help="Run attempt (default: the latest)")] = None,
    priority: Annotated[str, typer.Option(help="critical, high, normal or low")] = "normal",
) -> None:
    """Enqueue a runs:ingest job, once GitHub shows the run (or with a warning when it cannot tell)."""
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
        fail(in_flag_terms(str(exc), INGEST_FLAGS), ExitCode.USAGE)

    async def enqueue(producer: JobProducer) -> tuple[Job, str | None]:
        unchecked = await unchecked_run(settings, payload)
        return await producer.ingest(payload), unchecked

    job, unchecked = run(lambda: with_producer(settings, enqueue))
    console.print(json.dumps({"queue": QueueName.RUNS_INGEST.value, "id": job.id}))
    if unchecked:
        typer.echo(
            f"flakeguard: warning: enqueued without checking that the run exists: {unchecked}", err=True
        )


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
