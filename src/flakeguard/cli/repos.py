"""`flakeguard repos`: the repositories FlakeGuard tracks (polling covers the active ones)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flakeguard.cli.support import console, fail, run, settings_or_exit, split_repo, with_sessions

app = typer.Typer(
    help="Repositories FlakeGuard tracks (polling covers the active ones).", no_args_is_help=True
)


@app.command("list")
def repos_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Tracked repositories."""
    settings = settings_or_exit()
    from rich.table import Table
    from sqlalchemy import select

    from flakeguard.store.models import Repository

    async def fetch(session: Any) -> list[dict[str, Any]]:
        rows = (
            await session.execute(select(Repository).order_by(Repository.owner, Repository.name))
        ).scalars()
        return [
            {
                "repository": r.full_name,
                "installationId": r.installation_id,
                "defaultBranch": r.default_branch,
                "active": r.active,
            }
            for r in rows
        ]

    repos = run(lambda: with_sessions(settings, fetch))
    if as_json:
        console.print_json(data=repos)
        return
    # "polled": the `active` flag; repositories fed only by `flakeguard ingest` are not.
    table = Table("repository", "installation", "default branch", "polled")
    for r in repos:
        table.add_row(
            r["repository"],
            str(r["installationId"] or "-"),
            r["defaultBranch"] or "-",
            "yes" if r["active"] else "no",
        )
    console.print(table)


@app.command("add")
def repos_add(
    repo: Annotated[str, typer.Argument(help="OWNER/NAME")],
    installation_id: Annotated[int | None, typer.Option(help="GitHub App installation id")] = None,
    default_branch: Annotated[str | None, typer.Option(help="The default branch (protected)")] = None,
) -> None:
    """Track a repository on GitHub (polling then looks for its runs)."""
    settings = settings_or_exit()
    from flakeguard.store.repository import upsert_repository

    owner, name = split_repo(repo)

    async def add(session: Any) -> None:
        row = await upsert_repository(
            session, owner, name, installation_id=installation_id, default_branch=default_branch
        )
        row.active = True

    run(lambda: with_sessions(settings, add))
    console.print(f"tracking {owner}/{name}")


@app.command("remove")
def repos_remove(repo: Annotated[str, typer.Argument(help="OWNER/NAME")]) -> None:
    """Stop polling a repository; its history stays."""
    settings = settings_or_exit()
    from flakeguard.store.repository import get_repository

    owner, name = split_repo(repo)

    async def deactivate(session: Any) -> bool:
        row = await get_repository(session, owner, name)
        if row is None:
            return False
        row.active = False
        return True

    if not run(lambda: with_sessions(settings, deactivate)):
        fail(f"{owner}/{name} is not tracked (`flakeguard repos list` shows the tracked ones)")
    console.print(f"{owner}/{name} is no longer polled")
