"""Jobs from producers that set no BullMQ priority, such as a Node producer written from the
original README (`queue.add('process-run', {..., priority: 'high'})`: the priority is only in the
payload).

BullMQ runs an unprioritised job before every prioritised one, critical work included. So the first
time a worker takes such a job, it moves it back, in one atomic script (`moveToDelayed` with the
fields to update, due now, without spending an attempt), with the BullMQ priority of its payload's
`priority` (`normal` when it has none); a job with no `attempts` also gets the retry policy's
attempts and backoff, as FlakeGuard's own jobs have. Next time round it is taken in priority order.
Costs one Redis round trip per foreign job; FlakeGuard's own jobs always have a priority.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bullmq import Job
from bullmq.job import optsEncodeMap

from flakeguard.jobs.names import Priority
from flakeguard.jobs.retry import RetryPolicy
from flakeguard.logging import get_logger

log = get_logger("flakeguard.worker")


def payload_priority(data: Any) -> Priority:
    value = data.get("priority") if isinstance(data, dict) else None
    try:
        return Priority(str(value))
    except ValueError:
        return Priority.NORMAL


async def requeue_at_payload_priority(job: Job, token: str, policy: RetryPolicy) -> bool:
    """True when `job` had no BullMQ priority and was moved back with one; the caller then raises
    bullmq's DelayedError so that the job is neither completed nor failed."""
    if job.priority:
        return False
    priority = payload_priority(job.data)
    opts: dict[str, Any] = {**job.opts, "priority": priority.bullmq}
    if not opts.get("attempts"):
        opts.update(policy.job_options())
    fields = {
        "priority": priority.bullmq,
        "opts": json.dumps({optsEncodeMap.get(k, k): v for k, v in opts.items()}, separators=(",", ":")),
    }
    now = round(time.time() * 1000)
    await job.backend.moveToDelayed(job.id, now, 0, token, {"skipAttempt": True, "fieldsToUpdate": fields})
    log.info("job_requeued_with_priority", priority=priority.value, bullmqPriority=priority.bullmq)
    return True
