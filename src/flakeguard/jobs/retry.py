"""Retry policy: capped exponential backoff with jitter, and no retries for permanent errors.

bullmq's built-in exponential backoff has neither a cap nor jitter, so jobs we enqueue use the
custom backoff type `flakeguard`, computed by `backoff_delay_ms` through the worker's
`settings.backoffStrategy` hook (see BULLMQ-NOTES.md). Jobs from other producers that ask for
bullmq's built-in `fixed`/`exponential` types keep their own behaviour.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flakeguard.jobs.errors import PermanentError
from flakeguard.jobs.payloads import PayloadError

BACKOFF_TYPE = "flakeguard"
FAIL_NOW = -1  # bullmq: a backoff of -1 moves the job to failed without further attempts


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    base_delay_ms: int = 5000
    max_delay_ms: int = 30000
    multiplier: float = 2.0

    def backoff_delay_ms(self, attempts_made: int, rng: Callable[[], float] = random.random) -> int:
        """Delay before the next attempt after `attempts_made` attempts (>= 1).

        "Equal jitter": half the capped exponential delay is fixed, half is random, so retries of
        jobs that failed together spread out without any retry coming back immediately.
        """
        exponent = max(attempts_made - 1, 0)
        capped = min(self.max_delay_ms, self.base_delay_ms * self.multiplier**exponent)
        return int(capped / 2 + rng() * capped / 2)

    def job_options(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "backoff": {"type": BACKOFF_TYPE, "delay": self.base_delay_ms}}


def is_retryable(error: BaseException) -> bool:
    return not isinstance(error, PayloadError | PermanentError)


def make_backoff_strategy(policy: RetryPolicy) -> Callable[..., int]:
    """The callable bullmq invokes as `fn(attempts_made, type, err, job) -> ms`."""

    def strategy(
        attempts_made: int, backoff_type: str, err: BaseException | None = None, job: Any = None
    ) -> int:
        if err is not None and not is_retryable(err):
            return FAIL_NOW
        return policy.backoff_delay_ms(attempts_made)

    return strategy
