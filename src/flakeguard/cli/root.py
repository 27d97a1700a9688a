"""The root `flakeguard` command: only assembles the command modules, in the order `--help` lists them."""

from __future__ import annotations

import sys

import typer

from flakeguard.cli import enqueue, ingest, loadtest, quarantine, queues, recompute, report, repos, serve

app = typer.Typer(help="FlakeGuard: finds flaky tests in GitHub Actions CI.", no_args_is_help=True)
for commands in (serve.app, loadtest.app, ingest.app, recompute.app, report.app):
    app.add_typer(commands)
app.add_typer(enqueue.app, name="enqueue")
app.add_typer(queues.app, name="queues")
app.add_typer(repos.app, name="repos")
app.add_typer(quarantine.app, name="quarantine")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
