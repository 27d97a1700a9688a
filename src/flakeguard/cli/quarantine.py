"""`flakeguard quarantine list|add|release|history`: the quarantine of a repository, in-process."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from flakeguard.cli.support import console, fail, in_repository, settings_or_exit

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from flakeguard.pipeline.test_refs import Resolution

Repo = Annotated[str, typer.Option(help="OWNER/NAME")]
TestRefs = Annotated[
    list[str],
    typer.Option(
        "--test",
        help="A test as the report prints it (`module.Class › test`), classname::name, a unique end "
        "of its name, its id or its key (repeatable)",
    ),
]
Reason = Annotated[str, typer.Option(help="Why (kept in the history)")]
Actor = Annotated[str | None, typer.Option(help="Who (default: the current user)")]

app = typer.Typer(help="The quarantine: tests CI should mute.", no_args_is_help=True)


def _actor(value: str | None) -> str:
    if value:
        return value
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _change(repo: str, tests: list[str], reason: str, actor: str | None, *, release: bool) -> None:
    from flakeguard.pipeline.quarantine import quarantine_tests, release_tests, resolve_tests

    who = _actor(actor)

    async def change(session: AsyncSession, repository_id: int) -> tuple[int, Resolution]:
        resolved = await resolve_tests(session, repository_id, tests)
        if not resolved.complete:
            return 0, resolved
        fn = release_tests if release else quarantine_tests
        return await fn(session, repository_id, resolved.ids, reason=reason, actor=who), resolved

    changed, resolved = in_repository(settings_or_exit(), repo, change, write=True)
    if not resolved.complete:
        fail(f"{resolved.describe_problems()}; nothing changed")
    verb = "released" if release else "quarantined"
    console.print(f"{verb} {changed} of {len(tests)} test(s) ({len(tests) - changed} unchanged)")


@app.command("list")
def list_command(
    repo: Repo, as_json: Annotated[bool, typer.Option("--json", help="JSON for test runners")] = False
) -> None:
    """The quarantined tests of a repository."""
    from flakeguard.cli.tables import Column, fitted_table
    from flakeguard.pipeline.quarantine import QuarantineEntry, quarantine_json, quarantine_list

    entries: list[QuarantineEntry] = in_repository(settings_or_exit(), repo, quarantine_list, write=False)
    if as_json:
        typer.echo(json.dumps(quarantine_json(repo, entries, datetime.now(UTC)), indent=2))
        return
    columns = [
        Column("id", "right"),
        Column("test", cut="start"),
        Column("since"),
        Column("by", cut="end"),
        Column("reason", cut="end"),
    ]
    rows = [
        [
            str(e.test_case_id),
            e.display,
            e.since.strftime("%Y-%m-%d"),
            "auto" if e.automatic else e.actor,
            e.reason,
        ]
        for e in entries
    ]
    title = f"quarantine · {repo} · {len(entries)}"
    console.print(fitted_table(columns, rows, console.width, title=title))
    if entries:
        console.print("[dim]full reasons and keys: --json[/dim]")


@app.command("add")
def add_command(repo: Repo, test: TestRefs, reason: Reason, actor: Actor = None) -> None:
    """Quarantine tests by hand (never released automatically)."""
    _change(repo, test, reason, actor, release=False)


@app.command("release")
def release_command(repo: Repo, test: TestRefs, reason: Reason, actor: Actor = None) -> None:
    """Release tests by hand (automatic quarantine then waits for new flaky evidence)."""
    _change(repo, test, reason, actor, release=True)


@app.command("history")
def history_command(
    repo: Repo,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Quarantine changes, newest first."""
    from flakeguard.cli.tables import Column, fitted_table
    from flakeguard.pipeline.quarantine import QuarantineHistoryEntry, quarantine_history

    async def history(session: AsyncSession, repository_id: int) -> list[QuarantineHistoryEntry]:
        return await quarantine_history(session, repository_id, limit=limit)

    events = in_repository(settings_or_exit(), repo, history, write=False)
    if as_json:
        typer.echo(json.dumps({"repository": repo, "events": [e.to_json() for e in events]}, indent=2))
        return
    columns = [
        Column("at"),
        Column("action"),
        Column("test", cut="start"),
        Column("by", cut="end"),
        Column("reason", cut="end"),
    ]
    rows = [
        [
            e.at.strftime("%Y-%m-%d %H:%M"),
            e.action,
            e.display,
            "auto" if e.automatic else e.actor,
            e.reason,
        ]
        for e in events
    ]
    console.print(fitted_table(columns, rows, console.width, title=f"quarantine history · {repo}"))
