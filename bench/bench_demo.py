"""The README's demo, timed (not a test): how long after `flakeguard up` the report has what it promises.

    .venv/bin/python bench/bench_demo.py [--repeat 3]

In a fresh folder, the README's order: the quick start (`flakeguard up` on embedded defaults, no
GitHub) until /health answers, then Ctrl-C; then the fake GitHub with 30 runs of 20 tests, and
`flakeguard up` again with its three variables. From that second start, `flakeguard report --format
json` is run as fast as it answers (in the folder, nothing set) and three moments are printed: the
first tests reported, the generated flaky and broken tests named (test_case_001 and _002 flaky,
test_case_000 broken), and all 30 runs analysed. `make up` runs the same `flakeguard up`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import machine

BIN = Path(sys.executable).parent
EXPECTED = {"test_case_000": "broken", "test_case_001": "flaky", "test_case_002": "flaky"}
GIVE_UP_S = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_of(**values: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "FLAKEGUARD_"))}
    keep.pop("DATABASE_URL", None)
    keep.pop("REDIS_URL", None)
    return {**keep, "BIND_HOST": "127.0.0.1", **values}


def start_up(folder: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`flakeguard up`; its log is appended to BENCH_DEMO_LOG when set (to see where time goes)."""
    with open(os.environ.get("BENCH_DEMO_LOG", os.devnull), "ab") as log:
        return subprocess.Popen(
            [str(BIN / "flakeguard"), "up"], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(60)


def wait_healthy(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("flakeguard up did not become healthy within 60 s")


def report(folder: Path) -> list[dict[str, object]]:
    out = subprocess.run(
        [str(BIN / "flakeguard"), "report", "--repo", "acme/project", "--format", "json"],
        cwd=folder,
        env=env_of(),
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return []
    tests: list[dict[str, object]] = json.loads(out.stdout)["tests"]
    return tests


def one_demo(root: Path) -> tuple[float, float, float]:
    folder = root / "project"
    folder.mkdir()
    health = free_port()
    ports = {"HEALTH_CHECK_PORT": str(health), "METRICS_PORT": str(free_port())}
    quick = start_up(folder, env_of(**ports))
    wait_healthy(health)
    stop(quick)

    demo = ["--runs", "30", "--tests-per-run", "20", "--key-file", str(root / "app.pem")]
    fake = subprocess.Popen(
        [sys.executable, "-m", "flakeguard.testing.fake_github", "--port", str(free_port()), *demo],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    printed = dict(
        line.strip().split("=", 1) for line in (fake.stdout.readline() for _ in range(4)) if "=" in line
    )
    started = time.monotonic()
    up = start_up(folder, env_of(**ports, **printed))
    first = named = complete = 0.0
    try:
        while not complete and time.monotonic() - started < GIVE_UP_S:
            tests = report(folder)
            now = time.monotonic() - started
            if tests and not first:
                first = now
            statuses = {str(t["name"]): t["status"] for t in tests if t["status"] in ("flaky", "broken")}
            if statuses == EXPECTED and not named:
                named = now
            if len(tests) == 20 and all(t["executions"] == 30 for t in tests):
                complete = now
    finally:
        stop(up)
        fake.terminate()
        fake.wait(10)
    if not complete:
        raise SystemExit(f"the demo did not complete within {GIVE_UP_S:.0f} s")
    return first, named, complete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"# README demo, seconds after the second `flakeguard up` ({machine()})")
    print(f"{'run':>4} {'first tests':>12} {'flaky+broken named':>19} {'all 30 runs':>12}")
    for index in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            first, named, complete = one_demo(Path(tmp))
        print(f"{index + 1:>4} {first:12.1f} {named:19.1f} {complete:12.1f}")
    print(f"# load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
