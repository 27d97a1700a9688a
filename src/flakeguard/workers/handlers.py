"""One thin handler per queue: parse the payload, call the pipeline, return a small result.

GitHub's reserve: a `low` priority job (polling, and what polling enqueues) first checks that the
installation's known remaining budget is at least GITHUB_RATE_LIMIT_RESERVE; below it, the client
raises `RateLimited(kind="reserve")` and the host delays that job alone until the reset, while
`critical`/`high`/`normal` jobs keep the last calls of the hour.
"""

from __future__ import annotations

from typing import Any

from flakeguard.jobs.errors import PermanentError
from flakeguard.jobs.names import Priority, QueueName
from flakeguard.jobs.payloads import (
    PollingJob,
    RepositoryRef,
    RunsAnalyzeJob,
    RunsIngestJob,
    TestsRecomputeJob,
    parse_payload,
)
from flakeguard.pipeline.analyze import analyze_run, run_result
from flakeguard.pipeline.checks import (
    QUARANTINE_JOB_NAME,
    QuarantineActionJob,
    apply_quarantine_action,
    check_run_current,
    publish_run_check,
)
from flakeguard.pipeline.ingest import ingest_run
from flakeguard.pipeline.polling import run_polling_job
from flakeguard.pipeline.recompute import recompute_detailed
from flakeguard.services import Services
from flakeguard.workers.context import Handler, JobContext


async def ensure_reserve(services: Services, priority: Priority, repository: RepositoryRef | None) -> None:
    """Raises RateLimited(kind="reserve") for low-priority work when the budget is under the reserve."""
    if priority is not Priority.LOW or not services.github.configured:
        return
    reserve = services.settings.github_rate_limit_reserve
    if repository is None:
        if services.github.app is not None:
            services.github.app.app_client().ensure_budget(reserve)
        return
    try:
        client = await services.github.client_for(
            repository.owner, repository.repo, repository.installation_id
        )
    except PermanentError:
        return  # the job itself reports it
    client.ensure_budget(reserve)


async def handle_ingest(ctx: JobContext) -> dict[str, Any]:
    job = parse_payload(RunsIngestJob, ctx.data)
    await ensure_reserve(ctx.services, job.priority, job.repository)
    return (await ingest_run(ctx.services, job)).as_dict()


async def handle_analyze(ctx: JobContext) -> dict[str, Any]:
    if ctx.job.name == QUARANTINE_JOB_NAME:
        action = parse_payload(QuarantineActionJob, ctx.data)
        return await apply_quarantine_action(ctx.services, action)
    job = parse_payload(RunsAnalyzeJob, ctx.data)
    analyzed = await analyze_run(ctx.services, job)
    skipped = {"skipped": "analysed since its last ingest (see forceRecompute)"} if analyzed.skipped else {}
    if analyzed.skipped and await check_run_current(ctx.services, analyzed.repository, analyzed.run):
        return run_result(analyzed, skipped)
    # Not skipped, or analysed by an earlier attempt of this job whose check-run write failed.
    check = await publish_run_check(ctx.services, analyzed.repository, analyzed.run, priority=job.priority)
    return run_result(analyzed, {**skipped, "checkRun": check})


async def handle_recompute(ctx: JobContext) -> dict[str, Any]:
    job = parse_payload(TestsRecomputeJob, ctx.data)

    async def progress(done: int, total: int) -> None:
        await ctx.progress(
            {"done": done, "total": total, "percent": round(100 * done / total, 1) if total else 100}
        )

    result = await recompute_detailed(ctx.services, job, progress=progress)
    return {
        "repository": job.repository.full_name,
        "scope": job.recompute_scope.type,
        "lookbackDays": job.lookback_days,
        "batchSize": job.batch_size,
        "updateQuarantineStatus": job.update_quarantine_status,
        "selected": result.selected,
        "unknownTests": result.unknown[:100],
        **result.summary.as_dict(),
    }


async def handle_polling(ctx: JobContext) -> dict[str, Any]:
    job = parse_payload(PollingJob, ctx.data)
    await ensure_reserve(ctx.services, job.priority, job.repository)
    return await run_polling_job(ctx.services, job, job_id=ctx.job.id)


HANDLERS: dict[QueueName, Handler] = {
    QueueName.RUNS_INGEST: handle_ingest,
    QueueName.RUNS_ANALYZE: handle_analyze,
    QueueName.TESTS_RECOMPUTE: handle_recompute,
    QueueName.POLLING: handle_polling,
}
