"""One thin handler per queue: parse the payload, call the pipeline, return a small result."""

from __future__ import annotations

from typing import Any

from flakeguard.jobs.names import QueueName
from flakeguard.jobs.payloads import PollingJob, RunsAnalyzeJob, RunsIngestJob, TestsRecomputeJob, parse_payload
from flakeguard.pipeline.analyze import analyze_run, run_result
from flakeguard.pipeline.ingest import ingest_run
from flakeguard.pipeline.polling import run_polling_job
from flakeguard.pipeline.recompute import recompute
from flakeguard.workers.context import Handler, JobContext


async def handle_ingest(ctx: JobContext) -> dict[str, Any]:
    job = parse_payload(RunsIngestJob, ctx.data)
    return (await ingest_run(ctx.services, job)).as_dict()


async def handle_analyze(ctx: JobContext) -> dict[str, Any]:
    job = parse_payload(RunsAnalyzeJob, ctx.data)
    analyzed = await analyze_run(ctx.services, job)
    return run_result(analyzed)


async def handle_recompute(ctx: JobContext) -> dict[str, Any]:
    job = parse_payload(TestsRecomputeJob, ctx.data)

    async def progress(done: int, total: int) -> None:
        await ctx.progress({"done": done, "total": total, "percent": round(100 * done / total, 1) if total else 100})

    summary = await recompute(ctx.services, job, progress=progress)
    return {"repository": job.repository.full_name, "scope": job.recompute_scope.type, **summary.as_dict()}


async def handle_polling(ctx: JobContext) -> dict[str, Any]:
    job = parse_payload(PollingJob, ctx.data)
    return await run_polling_job(ctx.services, job)


HANDLERS: dict[QueueName, Handler] = {
    QueueName.RUNS_INGEST: handle_ingest,
    QueueName.RUNS_ANALYZE: handle_analyze,
    QueueName.TESTS_RECOMPUTE: handle_recompute,
    QueueName.POLLING: handle_polling,
}
