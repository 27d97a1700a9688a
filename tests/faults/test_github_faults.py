"""GitHub misbehaving on about 30 % of requests (500/502/503, connection resets, answers lost after
the work was done, secondary rate limits) while two workers ingest and analyse 40 runs: nothing lost,
nothing dead-lettered, and each head sha gets exactly one check run with no annotation twice.

Duration on the 2-core machine: ~60 s.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from flakeguard.testing.fake_github import FakeGitHub

from .harness import Chaos, Jobs, WorkerProcess, populate, tally, until, worker_env
from .redis_servers import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]
RUNS = 40
TESTS_PER_RUN = 300


async def test_thirty_percent_github_faults_lose_nothing_and_never_duplicate_a_check_run(
    tmp_path: Path,
    aof_redis: RedisServer,
    fault_db: str,
    gh: FakeGitHub,
    jobs: Jobs,
    workers: list[WorkerProcess],
) -> None:
    run_ids = populate(gh, runs=RUNS, tests_per_run=TESTS_PER_RUN)
    env = worker_env(aof_redis.url, fault_db, gh)
    for name in ("w1", "w2"):
        workers.append(WorkerProcess(env, tmp_path, name).start())
    for worker in workers:
        await worker.wait_ready()

    with Chaos(gh, rate=0.3) as chaos:
        await jobs.enqueue_ingests(run_ids)
        await until(jobs.all_finished, 240, "all queues drained", *workers)
    (await tally(jobs, fault_db, run_ids, TESTS_PER_RUN)).assert_clean()

    # The faults did happen, lost answers to check-run writes included.
    assert chaos.armed["lost_response"] > 0 and chaos.armed["reset"] > 0 and chaos.armed["status"] > 0
    lost = [r for r in gh.responses if r.status in (502, 504) and "/check-runs" in r.path]
    assert lost, "no check-run write lost its answer"
    # One check run per head sha, whatever was retried; no annotation sent twice.
    per_sha = Counter(run.head_sha for run in gh.check_runs)
    assert len(per_sha) == RUNS and set(per_sha.values()) == {1}
    for run in gh.check_runs:
        keys = [(a["path"], a["start_line"], a.get("title")) for a in run.annotations]
        assert len(keys) == len(set(keys)), run.id
