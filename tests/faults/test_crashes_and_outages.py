"""Crashes and outages in the middle of 40 ingests, counted against truth at the end: executions lost
0, duplicated 0, jobs dead-lettered 0, jobs stuck 0.

- kill -9 of a worker, twice: the jobs it held run again (stalled check) on the other workers;
- Redis kill -9, down 30 s, restarted from its append-only file;
- PostgreSQL unreachable for 10 s and then for 60 s (a TCP proxy the test cuts).

Durations on the 2-core machine: ~35 s, ~55 s, ~110 s.
"""

from __future__ import annotations

import asyncio
import signal
from urllib.parse import urlsplit

import pytest

from flakeguard.jobs.names import QueueName
from flakeguard.testing.fake_github import Fault

from .harness import Jobs, WorkerProcess, World, populate, tally, until
from .redis_servers import RedisServer
from .tcp_proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.slow]
INGEST = QueueName.RUNS_INGEST
RUNS = 40
TESTS_PER_RUN = 300


async def test_kill_9_twice_mid_ingest_every_held_job_runs_again(world: World) -> None:
    run_ids = populate(world.gh, runs=RUNS, tests_per_run=TESTS_PER_RUN)
    world.gh.inject("/_blob/*", Fault.slow(1.5), times=-1)
    env = world.env()
    await world.jobs.enqueue_ingests(run_ids)

    # Each victim works alone: once it is dead, every active job is one a killed worker held.
    held: set[str] = set()
    for name in ("victim1", "victim2"):
        victim = world.worker(name, env)
        await until(lambda h=frozenset(held): _active_beyond(world.jobs, h), 60, f"{name} busy", victim)
        victim.signal(signal.SIGKILL)
        assert await victim.wait_exit(10) == -signal.SIGKILL
        held |= await world.jobs.active(INGEST)

    # The stalled check of the next worker hands every job the killed ones held back to the queue.
    survivor = world.worker("survivor", env)
    await until(world.jobs.all_finished, 120, "all queues drained", survivor)
    (await tally(world.jobs, world.database, run_ids, TESTS_PER_RUN)).assert_clean()
    stalled_logged = {
        str(e["jobId"]) for w in world.workers for e in w.events() if e["msg"] == "job_stalled_requeued"
    }
    assert held <= stalled_logged
    for job_id in held:
        assert int((await world.jobs.job_fields(INGEST, job_id)).get("stc", "0")) >= 1, job_id


async def test_redis_killed_for_30_s_and_restarted_loses_and_dead_letters_nothing(world: World) -> None:
    run_ids = populate(world.gh, runs=RUNS, tests_per_run=TESTS_PER_RUN)
    world.gh.inject("/_blob/*", Fault.slow(1), times=-1)
    worker = world.worker("w1", world.env())
    await worker.wait_ready()
    await world.jobs.enqueue_ingests(run_ids)
    await until(lambda: _completed_at_least(world.jobs, 5), 90, "a few ingests done", worker)

    world.redis.stop()  # SIGKILL: no shutdown save, the append-only file is all that is left
    await until(lambda: worker.health() == 503, 30, "readiness 503 during the outage", worker)
    await asyncio.sleep(30)
    restarted = RedisServer(world.tmp, world.redis.port, "--appendonly", "yes", "--appendfsync", "always")
    world.redis.process = restarted.start().process  # the fixture stops it

    await until(world.jobs.all_finished, 180, "all queues drained", worker)
    (await tally(world.jobs, world.database, run_ids, TESTS_PER_RUN)).assert_clean()
    await until(lambda: worker.health() == 200, 30, "ready again", worker)
    outage = _outage_events(worker, "redis")
    assert outage[0]["msg"] == "dependency_outage_started" and outage[0]["level"] == "warn"
    assert outage[-1]["msg"] == "dependency_outage_ended" and outage[-1]["duration_s"] > 0


async def test_postgres_unreachable_for_10_s_then_60_s_loses_and_dead_letters_nothing(world: World) -> None:
    run_ids = populate(world.gh, runs=2 * RUNS, tests_per_run=TESTS_PER_RUN)
    world.gh.inject("/_blob/*", Fault.slow(0.5), times=-1)
    real = urlsplit(world.database)
    with TcpProxy(real.hostname or "127.0.0.1", real.port or 5432) as proxy:
        via_proxy = world.database.replace(f"{real.hostname}:{real.port}", f"127.0.0.1:{proxy.port}")
        worker = world.worker("w1", world.env(via_proxy))
        await worker.wait_ready()
        for batch, seconds in ((run_ids[:RUNS], 10), (run_ids[RUNS:], 60)):
            done_before = (await world.jobs.counts(INGEST))["completed"]
            await world.jobs.enqueue_ingests(batch)
            await until(
                lambda d=done_before: _completed_at_least(world.jobs, d + 5), 90, "a few done", worker
            )
            proxy.cut()
            await until(lambda: worker.health() == 503, 30, "readiness 503 during the outage", worker)
            await asyncio.sleep(seconds)
            proxy.restore()
            await until(world.jobs.all_finished, 180, "all queues drained", worker)
    (await tally(world.jobs, world.database, run_ids, TESTS_PER_RUN)).assert_clean()
    outage = _outage_events(worker, "database")
    assert [e["msg"] for e in outage] == ["dependency_outage_started", "dependency_outage_ended"] * 2
    assert outage[3]["duration_s"] >= outage[1]["duration_s"]
    handed_back = [e for e in worker.events() if e["msg"] == "job_handed_back"]
    assert handed_back and {e["reason"] for e in handed_back} == {"outage"}


async def _active_beyond(jobs: Jobs, known: frozenset[str]) -> set[str]:
    return await jobs.active(INGEST) - known


async def _completed_at_least(jobs: Jobs, count: int) -> bool:
    return (await jobs.counts(INGEST))["completed"] >= count


def _outage_events(worker: WorkerProcess, dependency: str) -> list[dict[str, object]]:
    return [
        e
        for e in worker.events()
        if e["msg"] in ("dependency_outage_started", "dependency_outage_ended")
        and e.get("dependency") == dependency
    ]
