"""Starting against a broken dependency: a clear log line naming it (never its credentials), retries
with capped backoff while not ready, SIGTERM stops the process at any moment, and it starts serving
by itself once the dependency answers.

Duration on the 2-core machine: ~20 s.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from flakeguard.testing.fake_github import FakeGitHub

from .harness import WorkerProcess, until, worker_env
from .redis_servers import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _unreachable(worker: WorkerProcess, dependency: str) -> list[dict[str, object]]:
    return [
        e for e in worker.events() if e["msg"] == "dependency_unreachable" and e["dependency"] == dependency
    ]


async def test_broken_dependencies_at_start_up_are_named_retried_and_sigterm_stops_the_process(
    tmp_path: Path, fault_db: str, gh: FakeGitHub, workers: list[WorkerProcess]
) -> None:
    guarded = RedisServer(tmp_path, None, "--requirepass", "the-right-one").start()
    absent = RedisServer(tmp_path)  # its port is free: connections are refused until it starts
    try:
        cases = {
            "wrong-redis-password": (
                worker_env(f"redis://:not-the-password@127.0.0.1:{guarded.port}/0", fault_db, gh),
                "redis",
                "not-the-password",
            ),
            "unknown-database-host": (
                worker_env(
                    absent.url, "postgresql://flake:pg-secret-42@no-such-host.invalid:5432/flakeguard", gh
                ),
                "database",
                "pg-secret-42",
            ),
            "refused-redis-port": (worker_env(absent.url, fault_db, gh), "redis", None),
        }
        started = {name: WorkerProcess(env, tmp_path, name).start() for name, (env, _, _) in cases.items()}
        workers.extend(started.values())

        for name, (_, dependency, secret) in cases.items():
            worker = started[name]
            first = await until(lambda w=worker, d=dependency: _unreachable(w, d), 60, f"{name} log", worker)
            assert first[0]["level"] == "error" and first[0]["target"], first[0]
            assert worker.health("/health/live") == 200 and worker.health() == 503
            if secret is not None:
                assert secret not in worker.log()

        # Retried with a growing (capped) backoff while not ready ...
        refused = started["refused-redis-port"]
        await until(lambda: len(_unreachable(refused, "redis")) >= 2, 90, "two tries", refused)
        delays = [e["retry_in_s"] for e in _unreachable(refused, "redis")]
        assert delays == sorted(delays) and delays[0] < delays[-1]
        # ... and ready by itself once the dependency answers.
        absent.start()
        await refused.wait_ready(within=120)

        # SIGTERM stops a process that is still waiting, at once and cleanly.
        for name in ("wrong-redis-password", "unknown-database-host"):
            started[name].signal(signal.SIGTERM)
            assert await started[name].wait_exit(15) == 0, started[name].log()[-2000:]
    finally:
        guarded.stop()
        absent.stop()
