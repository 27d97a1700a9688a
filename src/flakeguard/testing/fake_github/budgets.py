"""Primary rate-limit budgets, one per identity (an installation, a token, the App, anonymous).

As GitHub does (API-NOTES §5, §6): every answered request spends one call of its caller's budget —
errors included — except a 304 and `GET /rate_limit`; every answer to a known caller carries the
`x-ratelimit-*` headers; anonymous callers get 60 an hour.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

ANONYMOUS = "anonymous"
ANONYMOUS_LIMIT = 60
WINDOW_S = 3600


@dataclass
class Budget:
    limit: int
    remaining: int
    reset_at: float

    @property
    def used(self) -> int:
        return self.limit - max(0, self.remaining)

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(max(0, self.remaining)),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-reset": str(math.ceil(self.reset_at)),
            "x-ratelimit-resource": "core",
        }

    def as_json(self) -> dict[str, int]:
        return {
            "limit": self.limit,
            "remaining": max(0, self.remaining),
            "reset": math.ceil(self.reset_at),
            "used": self.used,
        }


class Budgets:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._budgets: dict[str, Budget] = {}
        self._override: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def of(self, identity: str) -> Budget:
        """The identity's budget, refilled when its window has passed."""
        at = time.time()
        with self._lock:
            budget = self._budgets.get(identity)
            if budget is None or at >= budget.reset_at:
                limit = ANONYMOUS_LIMIT if identity == ANONYMOUS else self.limit
                if budget is None and self._override is not None:
                    budget = Budget(limit, min(limit, self._override[0]), at + self._override[1])
                else:
                    budget = Budget(limit, limit, at + WINDOW_S)
                self._budgets[identity] = budget
            return budget

    def charge(self, budget: Budget) -> None:
        with self._lock:
            budget.remaining -= 1

    def set_remaining(self, remaining: int, reset_in: int) -> None:
        """Every identity's remaining budget, now and for identities seen later."""
        with self._lock:
            self._override = (remaining, reset_in)
            for budget in self._budgets.values():
                budget.remaining = remaining
                budget.reset_at = time.time() + reset_in
