"""The one `flakeguard up` of a data folder, and how other commands find it.

`up` holds an exclusive `flock` on DATA_DIR/up.lock for as long as it runs (the kernel drops the lock
when the process ends, however it ends), so a second `up` in the same folder is refused before it
touches anything. Once its Redis runs, `up` writes DATA_DIR/instance.json: where its Redis and
database are, its pid and ports. Commands started in (or pointed at) that folder read the file, and
trust it only while the lock is held. The file is readable by its owner only: a configured
REDIS_URL or DATABASE_URL may carry a password.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

LOCK_FILE = "up.lock"
STATE_FILE = "instance.json"


@dataclass(frozen=True, slots=True)
class Instance:
    """A running `flakeguard up`. `database_url` None: the SQLite file of its data folder."""

    pid: int
    redis_url: str | None
    database_url: str | None
    health_port: int
    metrics_port: int | None
    started_at: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Instance:
        return cls(
            pid=int(data["pid"]),
            redis_url=data.get("redis_url"),
            database_url=data.get("database_url"),
            health_port=int(data["health_port"]),
            metrics_port=None if data.get("metrics_port") is None else int(data["metrics_port"]),
            started_at=float(data.get("started_at", 0.0)),
        )


class AlreadyRunning(Exception):
    def __init__(self, data_dir: Path, instance: Instance | None) -> None:
        self.data_dir = data_dir
        self.instance = instance
        where = f" (pid {instance.pid}, health on port {instance.health_port})" if instance else ""
        stop = f"`kill -INT {instance.pid}`" if instance else "stop that process"
        super().__init__(
            f"`flakeguard up` already runs in {data_dir.parent}{where}; nothing of it was touched. "
            f"Stop it first (Ctrl-C in its terminal, or {stop}) or start this one in another folder"
        )


def _locked(handle: IO[bytes], mode: int) -> bool:
    try:
        fcntl.flock(handle.fileno(), mode | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _read_state(data_dir: Path) -> Instance | None:
    try:
        return Instance.from_json(json.loads((data_dir / STATE_FILE).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class InstanceLock:
    """Held by `up` for its whole life: `acquire`, then `publish` once Redis runs, then `release`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._handle: IO[bytes] | None = None

    def acquire(self, wait_s: float = 1.0) -> None:
        """Take the folder's lock, or raise AlreadyRunning. Waits a moment: a command that checks
        whether `up` runs holds a shared lock for an instant."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.data_dir / LOCK_FILE, "a+b")  # noqa: SIM115 - held until release()
        deadline = time.monotonic() + wait_s
        while not _locked(handle, fcntl.LOCK_EX):
            if time.monotonic() >= deadline:
                handle.close()
                raise AlreadyRunning(self.data_dir, _read_state(self.data_dir))
            time.sleep(0.05)
        self._handle = handle

    def publish(self, instance: Instance) -> None:
        """Write where this instance's services are; atomically, owner-only."""
        path = self.data_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(instance), out)
        tmp.replace(path)

    def release(self) -> None:
        if self._handle is None:
            return
        (self.data_dir / STATE_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None


def find_running(data_dir: Path) -> Instance | None:
    """The `flakeguard up` running on this data folder, or None (none runs, or it left a stale file)."""
    if not (data_dir / STATE_FILE).exists():
        return None
    try:
        handle = open(data_dir / LOCK_FILE, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return None
    with handle:
        if _locked(handle, fcntl.LOCK_SH):  # nobody holds it: that `up` is gone
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return None
    return _read_state(data_dir)
