"""The `flakeguard` command line, one module per command group, each declaring its own Typer app.

`root` only assembles them (and turns expected errors into one line, `errors`); `support` holds what
the commands share (consoles, settings and the running `up`, argument parsing, the queues); `database`
opens the database for in-process commands. Command modules import from `support`, never from each
other's package parent, so there is no import cycle.
"""

from flakeguard.cli.root import app, main

__all__ = ["app", "main"]
