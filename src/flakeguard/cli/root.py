"""The root `flakeguard` command: only assembles the command modules, in the order `--help` lists them,
and turns the errors a user can act on into one line and an exit code (`flakeguard.cli.errors`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from flakeguard.cli import enqueue, ingest, loadtest, quarantine, queues, recompute, report, repos, serve
from flakeguard.cli.errors import CliError, ExitCode, explain
from flakeguard.cli.support import invocation, report_error


class RootGroup(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:
            if invocation.debug:
                raise
            problem = explain(exc) or CliError(
                f"internal error: {type(exc).__name__}: {str(exc).strip()[:300]} "
                "(run again with --debug for the traceback, and please report it)",
                ExitCode.INTERNAL,
            )
            report_error(problem)
            raise typer.Exit(problem.code) from None


app = typer.Typer(
    cls=RootGroup,
    help="FlakeGuard: finds flaky tests in GitHub Actions CI.",
    no_args_is_help=True,
    # A rich traceback shows local variables (tokens among them) over hundreds of lines: --debug
    # prints Python's own.
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            envvar="FLAKEGUARD_HOME",
            help="The folder `flakeguard up` runs in (default: this one); its database and Redis are used.",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
) -> None:
    invocation.home = home
    invocation.debug = debug
    invocation.instance = None


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
        sys.exit(ExitCode.INTERRUPTED)
