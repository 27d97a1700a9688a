"""The original's payload fields take effect: `forceRecompute`, `analysisConfig`, and the ingest job's
`metadata` (kept with the run, checked against GitHub's)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from flakeguard.jobs.names import Priority, QueueName
from flakeguard.jobs.payloads import RunsAnalyzeJob, RunsIngestJob, parse_payload
from flakeguard.pipeline.analyze import analyze_run
from flakeguard.pipeline.ingest import ingest_run
from flakeguard.services import Services
from flakeguard.store.models import WorkflowRun
from flakeguard.testing.fake_github import FakeGitHub
from flakeguard.workers.handlers import HANDLERS

from .history_helpers import T0, F, History, P, results
from .test_check_runs import INSTALLATION, OWNER, REF, REPO, artifact
from .test_worker import hosted, wait_state

pytestmark = pytest.mark.integration
HOUR = timedelta(hours=1)


async def run_analyze(services: Services, job: RunsAnalyzeJob, job_id: str | None = None) -> dict[str, Any]:
    queue = services.producer.queue(QueueName.RUNS_ANALYZE)
    added = await services.producer.analyze(job, job_id=job_id)
    async with hosted(services, HANDLERS, [QueueName.RUNS_ANALYZE]):
        state = await wait_state(queue, str(added.id), {"completed", "failed"}, 20)
    done = await queue.getJob(str(added.id))
    assert state == "completed", done.failedReason
    return dict(done.returnvalue)


async def test_force_recompute_analyses_an_analysed_run_again_and_republishes_its_check_run(
    services: Services, fake_github: FakeGitHub
) -> None:
    fake_github.add_repository(OWNER, REPO, installation_id=INSTALLATION)
    fake_github.add_run(
        OWNER, REPO, 4242, head_sha="c" * 40, branch="main", artifacts={"results": artifact(2)}
    )
    ingested = await ingest_run(services, RunsIngestJob(workflow_run_id=4242, repository=REF))
    assert ingested.analyze_job_id is not None
    job = RunsAnalyzeJob(workflow_run_id=4242, repository=REF, run_attempt=1, priority=Priority.HIGH)

    first = await run_analyze(services, job, job_id=ingested.analyze_job_id)
    assert first["tests"] == 5 and first["checkRun"]["status"] == "created"
    # The same run again, not forced: nothing new was ingested, so nothing is scored or published.
    again = await run_analyze(services, job, job_id="analyze-again")
    assert again["tests"] == 0 and "skipped" in again and "checkRun" not in again
    patches_before = len(fake_github.requests_to("/repos/acme/project/check-runs/*", "PATCH"))
    # Forced: every test analysed, the check run published again (its own job id: no dedup).
    forced = await run_analyze(services, job.model_copy(update={"force_recompute": True}))
    assert forced["forced"] is True and forced["tests"] == 5
    assert forced["checkRun"]["status"] == "updated" and forced["checkRun"]["id"] == first["checkRun"]["id"]
    assert len(fake_github.requests_to("/repos/acme/project/check-runs/*", "PATCH")) > patches_before


async def test_a_forced_analysis_reuses_no_analysis_of_an_identical_history(services: Services) -> None:
    h = await History(services).create()
    for i in range(6):
        await h.run({"a": P, "b": P, "c": P, "d": F if i % 2 else P}, at=T0 + i * HOUR, run_id=100 + i)
    job = parse_payload(
        RunsAnalyzeJob, {"workflowRunId": 105, "repository": {"owner": "acme", "repo": "app"}}
    )
    plain = await analyze_run(services, job, now=T0 + 7 * HOUR)
    forced = await analyze_run(services, job.model_copy(update={"force_recompute": True}), now=T0 + 7 * HOUR)
    assert plain.summary.tests == forced.summary.tests == 4
    assert forced.forced and not plain.forced
    # a, b and c share one history: analysed once unforced, three times forced; the verdicts agree.
    assert {k: v.verdict for k, v in plain.summary.analyses.items()} == {
        k: v.verdict for k, v in forced.summary.analyses.items()
    }


async def test_analysis_config_sets_the_window_and_the_minimum_runs(services: Services) -> None:
    h = await History(services).create()
    for i in range(6):
        await h.run({"a": P, "d": F if i % 2 else P}, at=T0 + i * 6 * HOUR, run_id=200 + i)
    now = T0 + 31 * HOUR
    base = {"workflowRunId": 205, "repository": {"owner": "acme", "repo": "app"}, "forceRecompute": True}
    await analyze_run(services, parse_payload(RunsAnalyzeJob, base), now=now)
    wide = (await results(h))["d"]
    assert wide["executions"] == 6 and wide["score"] is not None and wide["lookback_days"] == 30
    strict = {**base, "analysisConfig": {"minRunsThreshold": 7}}
    await analyze_run(services, parse_payload(RunsAnalyzeJob, strict), now=now)
    assert (await results(h))["d"]["score"] is None  # 6 runs are under minRunsThreshold 7
    narrow = {**base, "analysisConfig": {"lookbackDays": 1}}
    await analyze_run(services, parse_payload(RunsAnalyzeJob, narrow), now=now)
    row = (await results(h))["d"]
    # One day back from `now` (+31 h): the runs at +12, +18, +24 and +30 h.
    assert row["executions"] == 4 and row["lookback_days"] == 1


async def test_ingest_metadata_is_kept_with_the_run_and_checked_against_github(
    services: Services, fake_github: FakeGitHub
) -> None:
    fake_github.add_repository(OWNER, REPO, installation_id=INSTALLATION)
    fake_github.add_run(
        OWNER,
        REPO,
        5151,
        head_sha="d" * 40,
        branch="main",
        conclusion="failure",
        artifacts={"r": artifact(1)},
    )
    payload = {
        "workflowRunId": 5151,
        "repository": {"owner": OWNER, "repo": REPO, "installationId": INSTALLATION},
        "priority": "normal",
        "metadata": {
            "runStatus": "completed",
            "conclusion": "success",
            "headSha": "d" * 40,
            "headBranch": "main",
        },
    }
    await ingest_run(services, parse_payload(RunsIngestJob, payload))
    async with services.sessions() as session:
        run = (await session.execute(select(WorkflowRun).where(WorkflowRun.run_id == 5151))).scalar_one()
    assert run.conclusion == "failure"  # GitHub's value is the one used
    kept = run.producer_metadata
    assert kept is not None and kept["headSha"] == "d" * 40 and kept["runStatus"] == "completed"
    assert kept["mismatches"] == {"conclusion": {"sent": "success", "github": "failure"}}
