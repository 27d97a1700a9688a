"""Scrape benchmark (not a test): `/metrics` latency of a real worker with Redis up, then cut.

    .venv/bin/python bench/bench_metrics_scrape.py [--scrapes 200]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--redis 127.0.0.1:6379]

Starts `flakeguard worker` against PostgreSQL and, through a loopback TCP proxy, Redis; waits for a
queue sample; times `--scrapes` scrapes on one keep-alive connection; cuts the proxy (Redis "down":
connections refused) and times as many again. Side by side: `/health/live`, which touches nothing,
is the floor. Before the background sampler a scrape read the queue counts from Redis and, with Redis
down, waited on its timeouts (over 60 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.integration.helpers import free_port  # noqa: E402
from tests.integration.tcp_proxy import TcpProxy  # noqa: E402


def timed(client: httpx.Client, url: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url)
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return out


def summary(name: str, ms: list[float], floor: list[float]) -> str:
    p95 = statistics.quantiles(ms, n=20)[-1]
    ratio = statistics.median(ms) / statistics.median(floor)
    median = statistics.median(ms)
    return f"{name:<28} median {median:6.2f} ms  p95 {p95:6.2f} ms  max {max(ms):7.2f} ms  x{ratio:.1f} floor"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="127.0.0.1:6379")
    args = parser.parse_args()
    host, port = args.redis.rsplit(":", 1)
    health, metrics = free_port(), free_port()
    with TcpProxy(host, int(port)) as proxy, tempfile.TemporaryDirectory() as data:
        env = {
            **os.environ,
            "DATABASE_URL": args.database_url,
            "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
            "REDIS_PREFIX": f"bench{os.getpid()}",
            "HEALTH_CHECK_PORT": str(health),
            "METRICS_PORT": str(metrics),
            "BIND_HOST": "127.0.0.1",
            "POLLING_ENABLED": "false",
            "FLAKEGUARD_ENV": "test",
            "LOG_LEVEL": "warn",
            "FLAKEGUARD_DATA_DIR": data,
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "flakeguard", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with httpx.Client(timeout=10) as client:
                deadline = time.monotonic() + 120
                while "flakeguard_worker_queue_sampled_at_seconds 1" not in _text(client, metrics):
                    if time.monotonic() > deadline or worker.poll() is not None:
                        raise SystemExit("the worker did not start")
                    time.sleep(0.5)
                live = f"http://127.0.0.1:{health}/health/live"
                scrape = f"http://127.0.0.1:{metrics}/metrics"
                floor_up = timed(client, live, args.scrapes)
                up = timed(client, scrape, args.scrapes)
                proxy.cut()
                time.sleep(8)  # the sampler meets the outage at least once
                floor_down = timed(client, live, args.scrapes)
                down = timed(client, scrape, args.scrapes)
        finally:
            worker.terminate()
            worker.wait(60)
    print(machine())
    print(summary("/metrics, Redis up", up, floor_up))
    print(summary("/metrics, Redis down", down, floor_down))
    print(summary("/health/live (floor), up", floor_up, floor_up))


def _text(client: httpx.Client, port: int) -> str:
    try:
        return client.get(f"http://127.0.0.1:{port}/metrics").text
    except httpx.HTTPError:
        return ""


if __name__ == "__main__":
    main()
