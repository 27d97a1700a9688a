"""Stopping a worker through the door operators use: SIGTERM/SIGINT sent with os.kill to a real
`flakeguard worker` process. Jobs in flight finish within the grace period, or go back to their queue
without spending an attempt; restarts never dead-letter a job.

Durations on the 2-core machine: ~20 s and ~30 s.
"""

from __future__ import annotations

import signal

import pytest

from flakeguard.jobs.names import QueueName
from flakeguard.testing.fake_github import Fault

from .harness import Jobs, World, populate, tally, until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
INGEST = QueueName.RUNS_INGEST
TESTS_PER_RUN = 200


async def test_sigterm_lets_ten_jobs_in_flight_finish_then_exits_0(world: World) -> None:
    run_ids = populate(world.gh, runs=10, tests_per_run=TESTS_PER_RUN)
    world.gh.inject("/_blob/*", Fault.slow(4), times=-1)  # every artifact download takes 4 s
    # A poison payload first: it fails at once and blocks nobody.
    await world.jobs.producer.queue(INGEST).add(
        "ingest", {"workflowRunId": "not-a-number"}, {"jobId": "poison", "attempts": 3, "priority": 3}
    )
    ingest_ids = await world.jobs.enqueue_ingests(run_ids)
    env = world.env(WORKER_CONCURRENCY="10")
    first = world.worker("w1", env)
    await first.wait_ready()
    await until(lambda: _all_active(world.jobs, ingest_ids), 60, "ten ingest jobs in flight", first)

    first.signal(signal.SIGTERM)
    # Readiness says 503 at once, while the jobs in flight go on.
    await until(lambda: first.health() == 503, 10, "readiness 503 while draining", first)
    assert await first.wait_exit(60) == 0, first.log()[-3000:]

    # Every job in flight finished before the process exited: nothing left active or handed back.
    assert [await world.jobs.state(INGEST, job_id) for job_id in ingest_ids] == ["completed"] * 10
    events = [e["msg"] for e in first.events()]
    assert "shutdown_requested" in events and "flakeguard_stopped" in events
    assert "shutdown_forced" not in events and "job_handed_back" not in events
    poison = await world.jobs.job_fields(INGEST, "poison")
    assert (await world.jobs.state(INGEST, "poison"), poison["atm"]) == ("failed", "1")

    # A second worker serves the analysis jobs the first one's ingests enqueued.
    world.gh.clear_faults()
    second = world.worker("w2", env)
    await until(world.jobs.all_finished, 90, "all queues drained", second)
    result = await tally(world.jobs, world.database, run_ids, TESTS_PER_RUN)
    result.assert_clean(allowed_dead={"poison"})
    assert [job_id for job_id, _ in result.dead_lettered[INGEST.value]] == ["poison"]


async def test_two_sigterm_restarts_in_a_row_hand_the_same_jobs_back_without_spending_attempts(
    world: World,
) -> None:
    run_ids = populate(world.gh, runs=5, tests_per_run=TESTS_PER_RUN)
    world.gh.inject("/_blob/*", Fault.slow(8), times=-1)  # longer than the grace period
    ingest_ids = await world.jobs.enqueue_ingests(run_ids)
    env = world.env(SHUTDOWN_GRACE_MS="1000")

    # First restart: one SIGTERM, the grace period runs out, the jobs are handed back; exit 0.
    first = world.worker("w1", env)
    await until(lambda: _all_active(world.jobs, ingest_ids), 60, "five ingest jobs in flight", first)
    first.signal(signal.SIGTERM)
    assert await first.wait_exit(60) == 0, first.log()[-3000:]
    await _assert_handed_back_untouched(world.jobs, ingest_ids)
    assert sum(e["msg"] == "job_handed_back" for e in first.events()) == 5

    # Second restart catches the same jobs: SIGTERM twice exits at once, handing them back again.
    second = world.worker("w2", env)
    await until(lambda: _all_active(world.jobs, ingest_ids), 60, "the same five jobs in flight again", second)
    second.signal(signal.SIGTERM)
    # The second signal only once the first was taken: sent back to back, both would be pending
    # together and Linux delivers the lower-numbered SIGINT first.
    await until(
        lambda: any(e["msg"] == "shutdown_requested" for e in second.events()), 30, "SIGTERM taken", second
    )
    second.signal(signal.SIGINT)
    assert await second.wait_exit(30) == 128 + signal.SIGINT, second.log()[-3000:]
    await _assert_handed_back_untouched(world.jobs, ingest_ids)

    # The third start finishes them: each job spent exactly one attempt, none was dead-lettered.
    world.gh.clear_faults()
    third = world.worker("w3", env)
    await until(world.jobs.all_finished, 90, "all queues drained", third)
    (await tally(world.jobs, world.database, run_ids, TESTS_PER_RUN)).assert_clean()
    attempts = [(await world.jobs.job_fields(INGEST, job_id))["atm"] for job_id in ingest_ids]
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
