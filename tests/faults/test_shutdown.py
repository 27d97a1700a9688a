"""Stopping a worker through the door operators use: SIGTERM/SIGINT sent with os.kill to a real
`flakeguard worker` process. Jobs in flight finish within the grace period, or go back to their queue
without spending an attempt; restarts never dead-letter a job.

Durations on the 2-core machine: ~20 s and ~30 s.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from flakeguard.jobs.names import QueueName
from flakeguard.testing.fake_github import FakeGitHub, Fault

from .harness import Jobs, WorkerProcess, populate, tally, until, worker_env
from .redis_servers import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]
INGEST = QueueName.RUNS_INGEST
TESTS_PER_RUN = 200


async def test_sigterm_lets_ten_jobs_in_flight_finish_then_exits_0(
    tmp_path: Path,
    aof_redis: RedisServer,
    fault_db: str,
    gh: FakeGitHub,
    jobs: Jobs,
    workers: list[WorkerProcess],
) -> None:
    run_ids = populate(gh, runs=10, tests_per_run=TESTS_PER_RUN)
    gh.inject("/_blob/*", Fault.slow(4), times=-1)  # every artifact download takes 4 s
    # A poison payload first: it fails at once and blocks nobody.
    await jobs.producer.queue(INGEST).add(
        "ingest", {"workflowRunId": "not-a-number"}, {"jobId": "poison", "attempts": 3, "priority": 3}
    )
    ingest_ids = await jobs.enqueue_ingests(run_ids)
    env = worker_env(aof_redis.url, fault_db, gh, WORKER_CONCURRENCY="10")
    first = WorkerProcess(env, tmp_path, "w1")
    workers.append(first)
    first.start()
    await first.wait_ready()
    await until(lambda: _all_active(jobs, ingest_ids), 60, "ten ingest jobs in flight", first)

    first.signal(signal.SIGTERM)
    # Readiness says 503 at once, while the jobs in flight go on.
    await until(lambda: first.health() == 503, 10, "readiness 503 while draining", first)
    assert await first.wait_exit(60) == 0, first.log()[-3000:]

    # Every job in flight finished before the process exited: nothing left active or handed back.
    assert [await jobs.state(INGEST, job_id) for job_id in ingest_ids] == ["completed"] * 10
    events = [e["event"] for e in first.events()]
    assert "shutdown_requested" in events and "flakeguard_stopped" in events
    assert "shutdown_forced" not in events and "job_handed_back" not in events
    poison = await jobs.job_fields(INGEST, "poison")
    assert (await jobs.state(INGEST, "poison"), poison["atm"]) == ("failed", "1")

    # A second worker serves the analysis jobs the first one's ingests enqueued.
    gh.clear_faults()
    second = WorkerProcess(env, tmp_path, "w2").start()
    workers.append(second)
    await until(jobs.all_finished, 90, "all queues drained", second)
    result = await tally(jobs, fault_db, run_ids, TESTS_PER_RUN)
    result.assert_clean(allowed_dead={"poison"})
    assert [job_id for job_id, _ in result.dead_lettered[INGEST.value]] == ["poison"]


async def test_two_sigterm_restarts_in_a_row_hand_the_same_jobs_back_without_spending_attempts(
    tmp_path: Path,
    aof_redis: RedisServer,
    fault_db: str,
    gh: FakeGitHub,
    jobs: Jobs,
    workers: list[WorkerProcess],
) -> None:
    run_ids = populate(gh, runs=5, tests_per_run=TESTS_PER_RUN)
    gh.inject("/_blob/*", Fault.slow(8), times=-1)  # longer than the grace period
    ingest_ids = await jobs.enqueue_ingests(run_ids)
    env = worker_env(aof_redis.url, fault_db, gh, SHUTDOWN_GRACE_MS="1000")

    # First restart: one SIGTERM, the grace period runs out, the jobs are handed back; exit 0.
    first = WorkerProcess(env, tmp_path, "w1").start()
    workers.append(first)
    await until(lambda: _all_active(jobs, ingest_ids), 60, "five ingest jobs in flight", first)
    first.signal(signal.SIGTERM)
    assert await first.wait_exit(60) == 0, first.log()[-3000:]
    await _assert_handed_back_untouched(jobs, ingest_ids)
    assert sum(e["event"] == "job_handed_back" for e in first.events()) == 5

    # Second restart catches the same jobs: SIGTERM twice exits at once, handing them back again.
    second = WorkerProcess(env, tmp_path, "w2").start()
    workers.append(second)
    await until(lambda: _all_active(jobs, ingest_ids), 60, "the same five jobs in flight again", second)
    second.signal(signal.SIGTERM)
    second.signal(signal.SIGINT)
    assert await second.wait_exit(30) == 128 + signal.SIGINT, second.log()[-3000:]
    await _assert_handed_back_untouched(jobs, ingest_ids)

    # The third start finishes them: each job spent exactly one attempt, none was dead-lettered.
    gh.clear_faults()
    third = WorkerProcess(env, tmp_path, "w3").start()
    workers.append(third)
    await until(jobs.all_finished, 90, "all queues drained", third)
    (await tally(jobs, fault_db, run_ids, TESTS_PER_RUN)).assert_clean()
    attempts = [(await jobs.job_fields(INGEST, job_id))["atm"] for job_id in ingest_ids]
    assert attempts == ["1"] * len(ingest_ids)


async def _all_active(jobs: Jobs, job_ids: list[str]) -> bool:
    return set(job_ids) <= await jobs.active(INGEST)


async def _assert_handed_back_untouched(jobs: Jobs, job_ids: list[str]) -> None:
    for job_id in job_ids:
        state = await jobs.state(INGEST, job_id)
        fields = await jobs.job_fields(INGEST, job_id)
        assert state in {"delayed", "waiting", "prioritized"}, (job_id, state)
        # No attempt spent, no stall counted.
        assert (fields.get("atm", "0"), fields.get("stc", "0")) == ("0", "0"), (job_id, fields)
