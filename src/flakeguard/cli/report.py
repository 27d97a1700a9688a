"""`flakeguard report`: the flakiness report of a repository as a table, JSON or Markdown."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

from flakeguard.cli.errors import ExitCode
from flakeguard.cli.support import console, fail, in_repository, settings_or_exit, split_repo


class ReportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"


app = typer.Typer()


@app.command("report")
def report_command(
    repo: Annotated[str, typer.Option(help="OWNER/NAME")],
    output_format: Annotated[ReportFormat, typer.Option("--format", help="table, json or markdown")] = (
        ReportFormat.TABLE
    ),
    status: Annotated[
        str | None, typer.Option(help="Only these statuses, e.g. flaky,broken (default: every test)")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many tests (table/markdown)")] = None,
) -> None:
    """The flakiness report: every test (or --status ones), sorted by impact."""
    from flakeguard.pipeline.report import (
        build_report,
        parse_statuses,
        render_markdown,
        render_table,
        report_json,
    )

    settings = settings_or_exit()
    owner, name = split_repo(repo)
    try:
        statuses = parse_statuses(status)
    except ValueError as exc:
        fail(f"--status: {exc}", ExitCode.USAGE)
    rows = in_repository(
        settings, repo, lambda session, repository_id: build_report(session, repository_id, statuses)
    )
    generated_at = datetime.now(UTC)
    full_name = f"{owner}/{name}"
    if output_format is ReportFormat.JSON:
        # Plain stdout: exact JSON for tools (rich would wrap long lines).
        typer.echo(json.dumps(report_json(full_name, rows, generated_at), indent=2))
        return
    shown = rows[:limit] if limit else rows
    if output_format is ReportFormat.MARKDOWN:
        typer.echo(render_markdown(full_name, shown, generated_at), nl=False)
        return
    console.print(render_table(full_name, shown, generated_at, console.width))
    if len(shown) < len(rows):
        console.print(f"[dim]… {len(rows) - len(shown)} more (use --limit or --format json)[/dim]")
