"""`flakeguard report`: the flakiness report of a repository as a table, JSON or Markdown."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

from flakeguard.cli.support import console, err_console, run, settings_or_exit, split_repo


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
    from flakeguard.cli.database import open_database
    from flakeguard.pipeline.report import (
        ReportRow,
        build_report,
        parse_statuses,
        render_markdown,
        render_table,
        report_json,
    )
    from flakeguard.store.repository import get_repository

    settings = settings_or_exit()
    owner, name = split_repo(repo)
    try:
        statuses = parse_statuses(status)
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None

    async def go() -> list[ReportRow] | None:
        async with open_database(settings) as db, db.sessions() as session:
            repository = await get_repository(session, owner, name)
            if repository is None:
                return None
            return await build_report(session, repository.id, statuses)

    rows = run(go)
    if rows is None:
        err_console.print(f"[red]unknown repository {owner}/{name}[/red]")
        raise typer.Exit(1)
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
