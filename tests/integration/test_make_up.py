"""`make up` on embedded defaults, in a temporary copy of the project, as a newcomer would run it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def newcomer_env(**values: str) -> dict[str, str]:
    """A shell with nothing FlakeGuard-specific set, as a newcomer's is."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV")
        and not k.startswith(("GITHUB_", "MAKE", "FLAKEGUARD_", "POLLING_"))
    }
    # JSON log lines, to read them here; a newcomer's terminal shows the same lines as text.
    return {**env, "BIND_HOST": "127.0.0.1", "LOG_FORMAT": "json", **values}


def start_make_up(copy: Path, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            ["make", "up"], cwd=copy, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_until_serving(copy: Path, health_port: int, log_path: Path) -> dict[str, Any]:
    data_dir = copy / ".flakeguard"
    # Installing into a fresh .venv comes first (from the lock file, usually from uv's cache).
    wait_for(lambda: (data_dir / "flakeguard.pid").exists(), 240, f"flakeguard to start ({log_path})")
    health = wait_for(
        lambda: (
            (r := httpx.get(f"http://127.0.0.1:{health_port}/health", timeout=2)).status_code == 200 and r
        ),
        30,
        "/health to answer 200",
    )
    body: dict[str, Any] = health.json()
    return body


def stop_with_ctrl_c(copy: Path, make: subprocess.Popen[bytes], log_path: Path) -> None:
    """SIGINT to flakeguard, which exits 0 (and so does make), leaving no server behind."""
    data_dir = copy / ".flakeguard"
    pid = int((data_dir / "flakeguard.pid").read_text())
    os.kill(pid, signal.SIGINT)
    assert make.wait(60) == 0, log_path.read_text()[-3000:]
    assert b'"msg": "flakeguard_stopped"' in log_path.read_bytes()
    assert redis_servers_under(data_dir) == []
    assert not (data_dir / "flakeguard.pid").exists()


def cleanup(make: subprocess.Popen[bytes], data_dir: Path) -> None:
    if make.poll() is None:
        os.killpg(make.pid, signal.SIGKILL)
    for proc in redis_servers_under(data_dir):
        proc.kill()


def test_ctrl_c_in_the_terminal_stops_make_up_cleanly(project_copy: Path) -> None:
    """SIGINT to the whole foreground group as a terminal's Ctrl-C sends it; GNU make then reports
    "Interrupt" itself, but flakeguard still shuts down in order and leaves no server behind."""
    health_port = free_port()
    env = newcomer_env(HEALTH_CHECK_PORT=str(health_port), METRICS_PORT=str(free_port()))
    log_path = project_copy.parent / "make-up.log"
    make = start_make_up(project_copy, env, log_path)
    data_dir = project_copy / ".flakeguard"
    try:
        wait_until_serving(project_copy, health_port, log_path)
        pid = int((data_dir / "flakeguard.pid").read_text())
        os.killpg(make.pid, signal.SIGINT)
        make.wait(60)
        wait_for(lambda: not psutil.pid_exists(pid), 30, "flakeguard to exit")
        assert b'"msg": "flakeguard_stopped"' in log_path.read_bytes()
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert redis_servers_under(data_dir) == []
        assert not (data_dir / "flakeguard.pid").exists()
    finally:
        cleanup(make, data_dir)


def report(copy: Path) -> dict[str, Any]:
    """`.venv/bin/flakeguard report` exactly as the README runs it: in the folder, nothing set."""
    out = subprocess.run(
        [".venv/bin/flakeguard", "report", "--repo", "acme/project", "--format", "json"],
        cwd=copy,
        env=newcomer_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    parsed: dict[str, Any] = json.loads(out.stdout)
    return parsed


def test_the_quick_start_then_the_demo_in_the_readme_order(project_copy: Path) -> None:
    """The README, top to bottom: `make up` on embedded defaults (no GitHub: polling off), Ctrl-C;
    then the fake GitHub, its three variables exported, `make up` again, and `flakeguard report`
    names the generated flaky and broken tests without anyone enqueuing anything."""
    health_port, metrics_port = free_port(), free_port()
    env = newcomer_env(HEALTH_CHECK_PORT=str(health_port), METRICS_PORT=str(metrics_port))
    data_dir = project_copy / ".flakeguard"
    quick_log = project_copy.parent / "quick-start.log"
    make = start_make_up(project_copy, env, quick_log)
    try:
        body = wait_until_serving(project_copy, health_port, quick_log)
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
        stop_with_ctrl_c(project_copy, make, quick_log)
    finally:
        cleanup(make, data_dir)
    ready = [json.loads(line) for line in quick_log.read_text().splitlines() if '"flakeguard_ready"' in line]
    assert ready[0]["polling"].startswith("off (GitHub is not configured")

    fake_port = free_port()
    fake_args = [
        "--port",
        str(fake_port),
        "--runs",
        "30",
        "--tests-per-run",
        "20",
        "--key-file",
        "../app.pem",
    ]
    fake = subprocess.Popen(
        [".venv/bin/python", "-m", "flakeguard.testing.fake_github", *fake_args],
        cwd=project_copy,
        stdout=subprocess.PIPE,
        text=True,
    )
    demo_log = project_copy.parent / "demo.log"
    make = None
    try:
        assert fake.stdout is not None
        lines = [fake.stdout.readline() for _ in range(4)]
        printed = dict(line.strip().split("=", 1) for line in lines if "=" in line)
        assert set(printed) == {"GITHUB_API_URL", "GITHUB_APP_ID", "GITHUB_PRIVATE_KEY"}
        make = start_make_up(project_copy, {**env, **printed}, demo_log)
        wait_until_serving(project_copy, health_port, demo_log)

        def analysed_everything() -> dict[str, Any] | None:
            current = report(project_copy)
            done = len(current["tests"]) == 20 and all(t["executions"] == 30 for t in current["tests"])
            return current if done else None

        final = wait_for(analysed_everything, 180, "polling to ingest and analyse all 30 runs", interval=2)
        stop_with_ctrl_c(project_copy, make, demo_log)
    finally:
        if make is not None:
            cleanup(make, data_dir)
        fake.terminate()
        fake.wait(10)
    by_name = {t["name"]: t["status"] for t in final["tests"]}
    assert by_name["test_case_000"] == "broken"
    assert {name for name, status in by_name.items() if status == "flaky"} == {
        "test_case_001",
        "test_case_002",
    }
    ready = [json.loads(line) for line in demo_log.read_text().splitlines() if '"flakeguard_ready"' in line]
    assert ready[0]["polling"] == "on, every 15 min; polling now (first schedule)"
