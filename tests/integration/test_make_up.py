"""`make up` on embedded defaults, in a temporary copy of the project, as a newcomer would run it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from .helpers import ROOT, free_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [line for line in out.stdout.splitlines() if line and (ROOT / line).is_file()]


@pytest.fixture
def project_copy(tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "flakeguard"
    for name in tracked_files():
        if name.startswith("tests/interop/node_modules/"):
            continue
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    yield copy


def redis_servers_under(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "redis-server" in cmdline and str(path) in cmdline:
            found.append(proc)
    return found


@pytest.mark.parametrize("ctrl_c", ["process", "terminal"])
def test_make_up_starts_everything_on_embedded_defaults_and_stops_cleanly(
    project_copy: Path, ctrl_c: str
) -> None:
    """`process`: SIGINT to flakeguard, which exits 0 (and so does make). `terminal`: SIGINT to the whole
    foreground group as a terminal's Ctrl-C sends it; GNU make then reports "Interrupt" itself, but
    flakeguard still shuts down in order and leaves no server behind."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV") and not k.startswith(("GITHUB_", "MAKE"))
    }
    health_port, metrics_port = free_port(), free_port()
    env.update(
        HEALTH_CHECK_PORT=str(health_port),
        METRICS_PORT=str(metrics_port),
        BIND_HOST="127.0.0.1",
        POLLING_ENABLED="false",
    )
    log_path = project_copy.parent / "make-up.log"
    with open(log_path, "wb") as log:
        make = subprocess.Popen(
            ["make", "up"],
            cwd=project_copy,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    data_dir = project_copy / ".flakeguard"
    try:
        # Installing into a fresh .venv comes first (from the lock file, usually from uv's cache).
        wait_for(lambda: (data_dir / "flakeguard.pid").exists(), 240, f"flakeguard to start ({log_path})")
        started = time.monotonic()
        health = wait_for(
            lambda: (
                (r := httpx.get(f"http://127.0.0.1:{health_port}/health", timeout=2)).status_code == 200 and r
            ),
            30,
            "/health to answer 200",
        )
        assert time.monotonic() - started < 30
        body = health.json()
        assert body["checks"]["database"]["details"]["dialect"] == "sqlite"
        assert body["checks"]["redis"]["details"]["target"].startswith("unix:")
        assert set(body["checks"]["queues"]["details"]["workers"]) == {
            "runs:ingest",
            "runs:analyze",
            "tests:recompute",
            "polling",
        }
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        assert "flakeguard_worker_queue_size" in metrics.text
        assert (data_dir / "flakeguard.db").exists()
        assert len(redis_servers_under(data_dir)) == 1

        pid = int((data_dir / "flakeguard.pid").read_text())
        if ctrl_c == "process":
            os.kill(pid, signal.SIGINT)
            assert make.wait(60) == 0, log_path.read_text()[-3000:]
        else:
            os.killpg(make.pid, signal.SIGINT)
            make.wait(60)
            wait_for(lambda: not psutil.pid_exists(pid), 30, "flakeguard to exit")
        assert b'"msg": "flakeguard_stopped"' in log_path.read_bytes()
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert redis_servers_under(data_dir) == []
        assert not (data_dir / "flakeguard.pid").exists()
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
        for proc in redis_servers_under(data_dir):
            proc.kill()
