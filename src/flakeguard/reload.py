"""`flakeguard worker --reload`: development hot reload (docker-compose.dev.yml).

The worker runs as a child process (`python -m flakeguard worker ...`) and is restarted when a Python
file under the watched directories changes: SIGINT first (jobs in flight finish, as on any shutdown),
SIGKILL only after RELOAD_GRACE_S. watchfiles does the watching (inotify, debounced); SIGTERM or
Ctrl-C to this process stops the child the same way and exits.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from flakeguard.logging import get_logger

RELOAD_GRACE_S = 30
PACKAGE_DIR = Path(__file__).resolve().parent

log = get_logger("flakeguard.reload")


def run_with_reload(args: Sequence[str], watch: Sequence[Path] = (PACKAGE_DIR,)) -> int:
    from watchfiles import Change, PythonFilter, run_process

    command = shlex.join([sys.executable, "-m", "flakeguard", *args])

    def changed(changes: set[tuple[Change, str]]) -> None:
        log.info("reloading", changed=sorted(path for _, path in changes)[:10])

    log.info("reload_watching", paths=[str(p) for p in watch])
    run_process(
        *watch,
        target=command,
        target_type="command",
        watch_filter=PythonFilter(),
        callback=changed,
        sigint_timeout=RELOAD_GRACE_S,
    )
    return 0
