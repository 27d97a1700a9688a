"""`flakeguard ingest`: store JUnit reports from files, folders and ZIPs, from any CI, without GitHub.

Exit codes: 0 when something was stored (or there was nothing to store), 1 when every report was
refused, 2 on bad arguments, 3 when the database cannot be used.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from flakeguard.cli.errors import ExitCode
from flakeguard.cli.support import console, fail, run, settings_or_exit, split_repo

if TYPE_CHECKING:
    from flakeguard.config import Settings
    from flakeguard.pipeline.ingest import IngestResult
    from flakeguard.pipeline.local_ingest import LocalInput, LocalRun


app = typer.Typer()


def parse_started_at(value: str | None) -> datetime:
    """ISO 8601; a time without offset is UTC; None is now."""
    if value is None:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def summary_json(result: IngestResult, analysis: dict[str, Any] | None) -> dict[str, Any]:
    data = result.as_dict()
    for key in ("artifactsExpired", "analyzeJobId"):
        data.pop(key, None)
    data["refused"] = [
        {
            "artifact": r["artifact"],
            "member": r["member"],
            "line": r["line"],
            "reason": r["reason_code"],
            "message": r["message"],
        }
        for r in data["refused"]
    ]
    data["analysis"] = analysis
    return data


def render_summary(data: dict[str, Any]) -> None:
    from rich.markup import escape

    head = f"{data['repository']} run {data['workflowRunId']} attempt {data['runAttempt']}"
    console.print(
        f"{head}: {data['reports']} report(s), {data['tests']} test(s) in the run, "
        f"{data['executions']} execution(s) read, {data['executionsNew']} new"
    )
    if data["refused"]:
        # One line per refusal, `artifact!member:line`, whole (a table would cut the path off).
        console.print(f"refused {len(data['refused'])} file(s):")
        for r in data["refused"]:
            where = r["artifact"] + (f"!{r['member']}" if r["member"] else "")
            where += f":{r['line']}" if r["line"] else ""
            console.print(
                f"  {escape(where)}  [red]{r['reason']}[/red]  {escape(r['message'])}", soft_wrap=True
            )
    if data["analysis"] is not None:
        parts = ", ".join(f"{k.removeprefix('status_')} {v}" for k, v in data["analysis"].items())
        console.print(f"analysis: {parts}")


async def _ingest(
    settings: Settings, run: LocalRun, inputs: list[LocalInput], analyze: bool
) -> tuple[IngestResult, dict[str, Any] | None]:
    from flakeguard.jobs.payloads import RunsAnalyzeJob
    from flakeguard.pipeline.analyze import analyze_run
    from flakeguard.pipeline.local_ingest import ingest_local
    from flakeguard.services import Services

    # Local ingest and in-process analysis never enqueue: no Redis needed.
    services = Services.create(settings, require_redis=False)
    try:
        result = await ingest_local(services, run, inputs)
        analysis = None
        if analyze and result.executions:
            # In-process, not through the queue: this may run where there is no Redis at all.
            job = RunsAnalyzeJob(
                workflow_run_id=run.run_id, repository=run.repository, run_attempt=run.run_attempt
            )
            analysis = (await analyze_run(services, job)).summary.as_dict()
        return result, analysis
    finally:
        await services.close()


@app.command("ingest")
def ingest_command(
    paths: Annotated[list[Path], typer.Argument(help="JUnit XML files, folders of them (recursive) or ZIPs")],
    repo: Annotated[str, typer.Option(help="OWNER/NAME")],
    run_id: Annotated[int, typer.Option("--run-id", min=1, help="The CI's run (pipeline, build) id")],
    sha: Annotated[str, typer.Option(help="The commit the run tested")],
    branch: Annotated[str, typer.Option(help="The branch the run tested")],
    attempt: Annotated[int, typer.Option(min=1, help="Attempt (re-run) number of the run")] = 1,
    event: Annotated[str, typer.Option(help="What started the run: push, pull_request, ...")] = "push",
    started_at: Annotated[
        str | None, typer.Option("--started-at", help="ISO 8601 start of the run (default: now)")
    ] = None,
    analyze: Annotated[bool, typer.Option("--analyze", help="Score the run's tests afterwards")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Store JUnit reports of one CI run (any CI: GitLab, Jenkins, CircleCI, local).

    Every report goes through the same guarded reader and store as GitHub artifacts; a refused
    file is listed and does not stop the others. Re-running with the same --run-id/--attempt
    stores nothing twice."""
    from pydantic import ValidationError

    from flakeguard.cli.database import prepare_database
    from flakeguard.jobs.payloads import RepositoryRef
    from flakeguard.pipeline.local_ingest import InputError, LocalRun, collect_inputs, parse_commit_sha

    def bad(message: str) -> NoReturn:
        fail(f"ingest: {message}", ExitCode.USAGE)

    settings = settings_or_exit()
    owner, name = split_repo(repo)
    try:
        ref = RepositoryRef(owner=owner, repo=name)
    except ValidationError:
        bad(f"--repo {repo!r} is not a valid OWNER/NAME")
    try:
        commit = parse_commit_sha(sha)
    except ValueError as exc:
        bad(f"--sha {exc}")
    if not branch.strip() or len(branch) > 255:
        bad("--branch must be a branch name (at most 255 characters)")
    try:
        started = parse_started_at(started_at)
    except ValueError:
        bad(f"--started-at {started_at!r} is not an ISO 8601 time")
    try:
        inputs = collect_inputs(paths)
    except InputError as exc:
        bad(str(exc))
    local_run = LocalRun(ref, run_id, attempt, commit, branch.strip(), event, started)
    prepare_database(settings, create_embedded=True)
    result, analysis = run(lambda: _ingest(settings, local_run, inputs, analyze))
    data = summary_json(result, analysis)
    if as_json:
        typer.echo(json.dumps(data, indent=2))  # plain stdout: exact JSON for tools
    else:
        render_summary(data)
    if result.refused and result.reports == 0:
        raise typer.Exit(1)
