"""What every log line of a job carries: the original's job fields, read from the job as it came.

The payload is not validated here (the handler does that): a field of the wrong type is simply left
out, so even the line that reports a bad payload has the job's id, queue and correlation id.
"""

from __future__ import annotations

from typing import Any

from bullmq import Job

from flakeguard.jobs.names import Priority, QueueName
from flakeguard.logging import new_correlation_id

_PRIORITY_BY_NUMBER = {p.bullmq: p.value for p in Priority}
_PRIORITY_NAMES = frozenset(p.value for p in Priority)


def job_log_fields(queue: QueueName, job: Job) -> dict[str, Any]:
    """`jobId`, `correlationId`, `workflowRunId`, `repository` (owner/repo), `priority`, `queue`,
    `attempt`. The correlation id is the payload's `correlationId`; a job without one (a Node producer,
    a scheduled poll) starts a new one here, which the jobs it enqueues inherit."""
    data = job.data if isinstance(job.data, dict) else {}
    fields: dict[str, Any] = {"jobId": str(job.id), "queue": queue.value, "attempt": job.attemptsMade + 1}
    correlation = data.get("correlationId")
    if not isinstance(correlation, str) or not correlation:
        correlation = new_correlation_id()
    fields["correlationId"] = correlation
    run_id = data.get("workflowRunId")
    if isinstance(run_id, int) and not isinstance(run_id, bool):
        fields["workflowRunId"] = run_id
    repository = data.get("repository")
    if isinstance(repository, dict):
        owner, repo = repository.get("owner"), repository.get("repo")
        if isinstance(owner, str) and isinstance(repo, str):
            fields["repository"] = f"{owner}/{repo}"
    priority = data.get("priority")
    if isinstance(priority, str) and priority in _PRIORITY_NAMES:
        fields["priority"] = priority
    elif job.priority in _PRIORITY_BY_NUMBER:
        fields["priority"] = _PRIORITY_BY_NUMBER[job.priority]
    return fields
