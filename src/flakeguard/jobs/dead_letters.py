"""Manual retry of dead letters (failed jobs) as a fresh start.

bullmq's own `Queue.retryJobs` keeps `attemptsMade` (a retried dead letter got one single attempt)
and pushes to the plain wait list, ignoring the job's priority. A manual retry is an operator saying
"the cause is fixed": the job gets all its attempts again, its stall count is cleared, and it goes
back by priority. The API (`POST /api/v1/queues/{name}/jobs/{id}/retry`, `.../retry-failed`) and the
CLI (`flakeguard queues retry`, `retry-failed`) both call these functions.
"""

from __future__ import annotations

from bullmq import Job, Queue

PAGE = 500


class NotFailed(Exception):
    """The job exists but is not in the failed set (its state is `state`)."""

    def __init__(self, job_id: str, state: str) -> None:
        self.job_id = job_id
        self.state = state
        super().__init__(f"job {job_id!r} is {state}, not failed")


async def retry_fresh(queue: Queue, job: Job) -> None:
    """Moves one failed job back to waiting with its full attempts (attemptsMade, attemptsStarted
    and the stall counter reset)."""
    # The job sits in the failed set: no worker holds it, so clearing the stall counter cannot race.
    await queue.client.hset(queue.toKey(str(job.id)), "stc", 0)
    await job.retry("failed", {"resetAttemptsMade": True, "resetAttemptsStarted": True})


async def retry_job(queue: Queue, job_id: str) -> bool:
    """False when there is no such job; raises NotFailed when it is not a dead letter."""
    job = await queue.getJob(job_id)
    if job is None:
        return False
    state = str(await queue.getJobState(job_id))
    if state != "failed":
        raise NotFailed(job_id, state)
    await retry_fresh(queue, job)
    return True


async def retry_all_failed(queue: Queue) -> int:
    """Every dead letter of `queue`, each as a fresh start; returns how many were retried."""
    retried = 0
    while True:
        jobs = [j for j in await queue.getJobs(["failed"], 0, PAGE - 1) if j is not None]
        if not jobs:
            return retried
        for job in jobs:
            try:
                await retry_fresh(queue, job)
            except Exception:
                # Retried or removed by someone else meanwhile: it has left the failed set.
                if str(await queue.getJobState(job.id)) == "failed":
                    raise
                continue
            retried += 1
