"""Queue management API: counts, job listings, dead-letter retry, pause/resume, enqueue.

Two sets of paths, one implementation: FlakeGuard's `/api/v1/queues/...` and the original worker's
`/queues/...` (`GET /queues`, `GET /queues/{name}/stats`, `GET /queues/{name}/failed`,
`POST /queues/{name}/retry/{jobId}`, `POST /queues/{name}/retry-failed`, `POST /queues/{name}/pause`,
`POST /queues/{name}/resume`), each a thin route over the same function. Both need the bearer token.
A queue name may come percent-encoded (`runs%3Aingest`): the server decodes the path before routing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from bullmq import Job, Queue
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel

from flakeguard.jobs import dead_letters
from flakeguard.jobs.names import QueueName
from flakeguard.jobs.payloads import PayloadError, RunsIngestJob, TestsRecomputeJob, parse_payload
from flakeguard.server.auth import require_api_token
from flakeguard.services import Services

router = APIRouter(prefix="/api/v1/queues", tags=["queues"], dependencies=[Depends(require_api_token)])
JobState = Literal["waiting", "active", "delayed", "prioritized", "completed", "failed", "paused"]


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _queue(services: Services, name: str) -> Queue:
    try:
        return services.producer.queue(QueueName(name))
    except ValueError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown queue {name!r}") from None


def job_view(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "data": job.data,
        "attemptsMade": job.attemptsMade,
        "failedReason": job.failedReason or None,
        "progress": job.progress,
        "timestamp": job.timestamp,
        "processedOn": job.processedOn,
        "finishedOn": job.finishedOn,
        "priority": job.opts.get("priority"),
    }


@router.get("")
async def list_queues(request: Request) -> dict[str, Any]:
    services = _services(request)
    counts = await services.producer.counts()
    paused = {name.value: await q.isPaused() for name, q in services.producer.queues().items()}
    return {"queues": [{"name": n, "paused": paused[n], "counts": c} for n, c in counts.items()]}


@router.get("/{name}/stats")
async def queue_stats(request: Request, name: str) -> dict[str, Any]:
    """One queue's counts by state and whether it is paused (an entry of `GET /queues`)."""
    queue = _queue(_services(request), name)
    states = ("waiting", "active", "delayed", "prioritized", "paused", "completed", "failed")
    counts = await queue.getJobCounts(*states)
    return {
        "name": name,
        "paused": bool(await queue.isPaused()),
        "counts": {state: int(counts.get(state, 0)) for state in states},
    }


@router.get("/{name}/jobs")
async def list_jobs(
    request: Request,
    name: str,
    state: JobState = "failed",
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    queue = _queue(_services(request), name)
    jobs = await queue.getJobs([state], start, start + limit - 1)
    return {"queue": name, "state": state, "jobs": [job_view(j) for j in jobs if j is not None]}


@router.get("/{name}/jobs/{job_id}")
async def get_job(request: Request, name: str, job_id: str) -> dict[str, Any]:
    queue = _queue(_services(request), name)
    job = await queue.getJob(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r} in {name}")
    view = job_view(job)
    view["state"] = await queue.getJobState(job_id)
    return view


@router.post("/{name}/jobs/{job_id}/retry")
async def retry_job(request: Request, name: str, job_id: str) -> dict[str, Any]:
    """A dead letter back to waiting as a fresh start: all its attempts again."""
    queue = _queue(_services(request), name)
    try:
        found = await dead_letters.retry_job(queue, job_id)
    except dead_letters.NotFailed as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r} in {name}")
    return {"queue": name, "id": job_id, "retried": True}


@router.post("/{name}/retry-failed")
async def retry_failed(request: Request, name: str) -> dict[str, Any]:
    """Every dead letter of the queue back to waiting, each as a fresh start."""
    queue = _queue(_services(request), name)
    return {"queue": name, "retried": await dead_letters.retry_all_failed(queue)}


@router.post("/{name}/pause")
async def pause(request: Request, name: str) -> dict[str, Any]:
    await _queue(_services(request), name).pause()
    return {"queue": name, "paused": True}


@router.post("/{name}/resume")
async def resume(request: Request, name: str) -> dict[str, Any]:
    await _queue(_services(request), name).resume()
    return {"queue": name, "paused": False}


class Enqueued(BaseModel):
    queue: str
    id: str | None
    correlationId: str | None = None


def enqueued(queue: QueueName, job: Job) -> Enqueued:
    data = job.data if isinstance(job.data, dict) else {}
    return Enqueued(queue=queue.value, id=job.id, correlationId=data.get("correlationId"))


@router.post("/runs:ingest/jobs", status_code=status.HTTP_202_ACCEPTED)
async def enqueue_ingest(request: Request, body: dict[str, Any]) -> Enqueued:
    try:
        payload = parse_payload(RunsIngestJob, body)
    except PayloadError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    job = await _services(request).producer.ingest(payload)
    return enqueued(QueueName.RUNS_INGEST, job)


@router.post("/tests:recompute/jobs", status_code=status.HTTP_202_ACCEPTED)
async def enqueue_recompute(request: Request, body: dict[str, Any]) -> Enqueued:
    try:
        payload = parse_payload(TestsRecomputeJob, body)
    except PayloadError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    job = await _services(request).producer.recompute(payload)
    return enqueued(QueueName.TESTS_RECOMPUTE, job)


# ---------------------------------------------------------------------------- the original's paths

original_router = APIRouter(
    prefix="/queues", tags=["queues (original worker's paths)"], dependencies=[Depends(require_api_token)]
)


@original_router.get("", summary="Counts of every queue (as GET /api/v1/queues)")
async def original_list_queues(request: Request) -> dict[str, Any]:
    return await list_queues(request)


@original_router.get("/{name}/stats", summary="One queue's counts (as GET /api/v1/queues/{name}/stats)")
async def original_queue_stats(request: Request, name: str) -> dict[str, Any]:
    return await queue_stats(request, name)


@original_router.get("/{name}/failed", summary="Dead letters, paged (as GET /api/v1/queues/{name}/jobs)")
async def original_failed(
    request: Request,
    name: str,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    page = await list_jobs(request, name, "failed", start, limit)
    total = int((await _queue(_services(request), name).getJobCounts("failed")).get("failed", 0))
    return {**page, "start": start, "limit": limit, "total": total}


@original_router.post("/{name}/retry/{job_id}", summary="Retry one failed job")
async def original_retry_job(request: Request, name: str, job_id: str) -> dict[str, Any]:
    return await retry_job(request, name, job_id)


@original_router.post("/{name}/retry-failed", summary="Retry every failed job of the queue")
async def original_retry_failed(request: Request, name: str) -> dict[str, Any]:
    return await retry_failed(request, name)


@original_router.post("/{name}/pause", summary="Stop taking jobs (jobs in flight finish)")
async def original_pause(request: Request, name: str) -> dict[str, Any]:
    return await pause(request, name)


@original_router.post("/{name}/resume", summary="Take jobs again")
async def original_resume(request: Request, name: str) -> dict[str, Any]:
    return await resume(request, name)
