"""The `flakeguard` command line: `main` assembles one module per command group.

`support` holds what the commands share (consoles, settings, argument parsing, the queues and the
database); each command module declares its own Typer app and imports only from `support`.
"""

from flakeguard.cli.root import app, main

__all__ = ["app", "main"]
