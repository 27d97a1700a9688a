"""The error taxonomy workers map onto the retry policy.

- PayloadError (jobs.payloads): the job can never succeed -> failed at once, no retries.
- PermanentError: the job's inputs are fine but the work cannot be done (repository gone, no access)
  -> failed at once, no retries, kept in the failed set (the dead letter queue) for manual retry.
- TransientError and anything unexpected: retried with exponential backoff and jitter.
- RateLimited (flakeguard.github.errors): the job is delayed until GitHub's reset without spending
  an attempt, and the queue is rate-limited meanwhile.
"""

from __future__ import annotations


class PermanentError(Exception):
    """Retrying will not help."""


class TransientError(Exception):
    """Retrying later may help."""
