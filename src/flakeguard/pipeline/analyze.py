"""`runs:analyze`: score every test of one ingested run attempt and report on its commit.

A run attempt already analysed since it was last ingested is not analysed again (a duplicate job:
nothing new to score) unless the job sets `forceRecompute`: then every test of the run is analysed
on its own (no reuse of identical histories) and the check run is published again. `analysisConfig`
(`lookbackDays`, `minRunsThreshold`, ...) sets the analysis window and thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flakeguard.jobs.errors import PermanentError
from flakeguard.jobs.payloads import RunsAnalyzeJob
from flakeguard.pipeline.scoring import (
    AnalysisMemo,
    RunCache,
    ScoringSummary,
    analysis_config,
    score_tests,
)
from flakeguard.services import Services
from flakeguard.store.models import Repository, TestExecution, WorkflowRun, utcnow
from flakeguard.store.repository import chunked, get_repository, lock_for_analysis

BATCH = 500


@dataclass(frozen=True, slots=True)
class AnalyzedRun:
    repository: Repository
    run: WorkflowRun
    summary: ScoringSummary
    skipped: bool = False  # analysed already since the last ingest, and not forced
    forced: bool = False


async def find_run(
    session: AsyncSession, repository: Repository, run_id: int, attempt: int | None
) -> WorkflowRun | None:
    query = select(WorkflowRun).where(
        WorkflowRun.repository_id == repository.id, WorkflowRun.run_id == run_id
    )
    if attempt is not None:
        query = query.where(WorkflowRun.run_attempt == attempt)
    query = query.order_by(WorkflowRun.run_attempt.desc()).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def tests_of_run(session: AsyncSession, workflow_run_row_id: int) -> list[int]:
    result = await session.execute(
        select(TestExecution.test_case_id)
        .where(TestExecution.workflow_run_id == workflow_run_row_id)
        .distinct()
    )
    return sorted(int(t) for t in result.scalars())


async def analyze_run(services: Services, job: RunsAnalyzeJob, now: datetime | None = None) -> AnalyzedRun:
    now = now or datetime.now(UTC)
    async with services.analysis_turn(job.repository.full_name), services.sessions.begin() as session:
        await lock_for_analysis(session, job.repository.owner, job.repository.repo)
        repository = await get_repository(session, job.repository.owner, job.repository.repo)
        if repository is None:
            raise PermanentError(f"repository {job.repository.full_name} has no ingested runs")
        run = await find_run(session, repository, job.workflow_run_id, job.run_attempt)
        if run is None:
            raise PermanentError(
                f"workflow run {job.workflow_run_id} of {repository.full_name} has not been ingested"
            )
        if not job.force_recompute and run.analyzed_at is not None and run.analyzed_at >= run.ingested_at:
            return AnalyzedRun(repository=repository, run=run, summary=ScoringSummary(), skipped=True)
        config = analysis_config(services.settings, repository, job.analysis_config)
        summary = ScoringSummary()
        # One run cache and one memo for every batch: the run attempts of the window are loaded once,
        # and identical histories across batches are analysed once (unless forced: each on its own).
        memo = AnalysisMemo(config, now, reuse=not job.force_recompute)
        runs = RunCache(repository.id, now - config.lookback)
        for batch in chunked(await tests_of_run(session, run.id), BATCH):
            part = await score_tests(
                session,
                repository,
                batch,
                config,
                now,
                update_quarantine=job.analysis_config.update_quarantine_status,
                keep_analyses=True,
                memo=memo,
                runs=runs,
            )
            summary.merge(part)
            summary.analyses.update(part.analyses)
        analyzed_at = utcnow()
        await session.execute(
            update(WorkflowRun).where(WorkflowRun.id == run.id).values(analyzed_at=analyzed_at)
        )
        run.analyzed_at = analyzed_at
    return AnalyzedRun(repository=repository, run=run, summary=summary, forced=job.force_recompute)


def run_result(analyzed: AnalyzedRun, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "repository": analyzed.repository.full_name,
        "workflowRunId": analyzed.run.run_id,
        "runAttempt": analyzed.run.run_attempt,
        "forced": analyzed.forced,
        **analyzed.summary.as_dict(),
        **(extra or {}),
    }
