"""`flakeguard quarantine list|add|release|history`: the quarantine of a repository, in-process."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flakeguard.cli.support import console, fail, in_repository, settings_or_exit

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

Repo = Annotated[str, typer.Option(help="OWNER/NAME")]
TestRefs = Annotated[list[str], typer.Option("--test", help="Test case id or full key (repeatable)")]
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

    async def change(session: AsyncSession, repository_id: int) -> tuple[int, list[str]]:
        resolved = await resolve_tests(session, repository_id, tests)
        if resolved.unknown:
            return 0, resolved.unknown
        fn = release_tests if release else quarantine_tests
        return await fn(session, repository_id, resolved.ids, reason=reason, actor=who), []

    changed, unknown = in_repository(settings_or_exit(), repo, change, write=True)
    if unknown:
        fail(f"unknown test(s), nothing changed: {', '.join(unknown)}")
    verb = "released" if release else "quarantined"
    console.print(f"{verb} {changed} of {len(tests)} test(s) ({len(tests) - changed} unchanged)")


@app.command("list")
def list_command(
    repo: Repo, as_json: Annotated[bool, typer.Option("--json", help="JSON for test runners")] = False
) -> None:
    """The quarantined tests of a repository."""
    from rich.table import Table

    from flakeguard.pipeline.quarantine import QuarantineEntry, quarantine_json, quarantine_list

    entries: list[QuarantineEntry] = in_repository(settings_or_exit(), repo, quarantine_list, write=False)
    if as_json:
        typer.echo(json.dumps(quarantine_json(repo, entries, datetime.now(UTC)), indent=2))
        return
    table = Table(
        "id", "test", "since", "by", "auto", "reason", title=f"quarantine · {repo} · {len(entries)}"
    )
    for e in entries:
        from flakeguard.junit.identity import display_name

        table.add_row(
            str(e.test_case_id),
            display_name(e.classname, e.name),
            e.since.strftime("%Y-%m-%d %H:%M"),
            e.actor,
            "yes" if e.automatic else "no",
            e.reason,
        )
    console.print(table)


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
    from rich.table import Table

    from flakeguard.pipeline.quarantine import quarantine_history

    async def history(session: AsyncSession, repository_id: int) -> list[Any]:
        return await quarantine_history(session, repository_id, limit=limit)

    events = in_repository(settings_or_exit(), repo, history, write=False)
    if as_json:
        typer.echo(json.dumps({"repository": repo, "events": [e.to_json() for e in events]}, indent=2))
        return
    table = Table("at", "action", "test id", "by", "auto", "reason", title=f"quarantine history · {repo}")
    for e in events:
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M"),
            e.action,
            str(e.test_case_id),
            e.actor,
            "yes" if e.automatic else "no",
            e.reason,
        )
    console.print(table)
