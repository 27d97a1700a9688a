"""Fault injection: `FakeGitHub.inject(pattern, fault, times=N)` makes matching requests fail.

Faults: any status (`"500"`, `"502"`, …), `slow` (answer after a delay), `reset` (TCP RST, no
answer), `lost_response` (the request is carried out, the client gets a 5xx instead of the answer),
`primary_limit` / `secondary_limit` (GitHub's 403/429 with its headers and messages, API-NOTES §5),
`expired_token` (401), `expired_artifact` (410), `truncated_zip` (the next download of that artifact
is cut, with a consistent Content-Length).
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flakeguard.testing.fake_github.budgets import Budget
from flakeguard.testing.fake_github.handlers import compile_template
from flakeguard.testing.fake_github.request import DOCS

RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"


@dataclass(frozen=True)
class Fault:
    """A fault to inject. Build with the class methods or pass a name to `FakeGitHub.inject`."""

    kind: str
    status: int = 500
    seconds: float = 0.0
    retry_after: int | None = None
    reset_in: int = 60
    keep: float = 0.5

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls("status", status=status)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls("slow", seconds=seconds)

    @classmethod
    def reset(cls) -> Fault:
        return cls("reset")

    @classmethod
    def lost_response(cls, status: int = 502) -> Fault:
        """The request is carried out, but the client gets `status` instead of the answer (a gateway
        timing out after GitHub did the work): a retried write must not do it twice."""
        return cls("lost_response", status=status)

    @classmethod
    def primary_limit(cls, status: int = 403, reset_in: int = 60) -> Fault:
        return cls("primary_limit", status=status, reset_in=reset_in)

    @classmethod
    def secondary_limit(cls, status: int = 403, retry_after: int | None = 30, reset_in: int = 60) -> Fault:
        return cls("secondary_limit", status=status, retry_after=retry_after, reset_in=reset_in)

    @classmethod
    def expired_token(cls) -> Fault:
        return cls("expired_token", status=401)

    @classmethod
    def expired_artifact(cls) -> Fault:
        return cls("expired_artifact", status=410)

    @classmethod
    def truncated_zip(cls, keep: float = 0.5) -> Fault:
        return cls("truncated_zip", keep=keep)

    @classmethod
    def named(cls, name: str, **params: Any) -> Fault:
        """`"500"`/`"502"`/..., `"slow"`, `"reset"`, `"primary_limit"`, `"secondary_limit"`,
        `"secondary_limit_no_retry_after"`, `"expired_token"`, `"expired_artifact"`, `"truncated_zip"`."""
        if name.isdigit():
            return cls.server_error(int(name))
        if name == "secondary_limit_no_retry_after":
            return cls.secondary_limit(retry_after=None, **params)
        factory: Callable[..., Fault] | None = getattr(cls, name, None)
        if factory is None or name == "named":
            raise ValueError(f"unknown fault {name!r}")
        return factory(**params)

    @property
    def answers(self) -> bool:
        """Whether the fault is itself the answer (else it delays, cuts or resets the real one)."""
        return self.kind not in ("slow", "reset", "truncated_zip", "lost_response")


@dataclass
class Injection:
    method: str | None
    pattern: str
    fault: Fault
    times: int  # < 0: forever


def path_matches(pattern: str, path: str, template: str | None) -> bool:
    """`pattern` is an endpoint template or a glob over the concrete path (`*` crosses `/`)."""
    if "{" in pattern:
        return pattern == template or compile_template(pattern).match(path) is not None
    return fnmatch.fnmatchcase(path, pattern)


class Faults:
    def __init__(self) -> None:
        self._injections: list[Injection] = []
        self._lock = threading.Lock()

    def inject(self, pattern: str, fault: Fault, times: int) -> None:
        method: str | None = None
        if " " in pattern:
            method, pattern = pattern.split(" ", 1)
            method = method.upper()
        with self._lock:
            self._injections.append(Injection(method, pattern, fault, times))

    def clear(self) -> None:
        with self._lock:
            self._injections.clear()

    def take(self, method: str, path: str, template: str | None) -> Fault | None:
        """The fault for this request, if one is armed (and one use of it spent)."""
        with self._lock:
            for inj in self._injections:
                if inj.times == 0 or (inj.method and inj.method != method):
                    continue
                if path_matches(inj.pattern, path, template):
                    if inj.times > 0:
                        inj.times -= 1
                    return inj.fault
        return None


def fault_answer(fault: Fault, budget: Budget | None, limit: int) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body GitHub sends for an answering fault.

    Rate-limit answers carry the caller's `x-ratelimit-*` headers (`remaining` 0 for a primary
    limit); server errors and 401/410 carry none."""
    headers = {"content-type": "application/json; charset=utf-8"}
    reset = str(int(time.time()) + fault.reset_in)
    body: dict[str, Any]
    if fault.kind == "primary_limit":
        body = {
            "message": "API rate limit exceeded for installation ID 67890. If you reach out to GitHub "
            "Support for help, please include the request ID.",
            "documentation_url": RATE_LIMIT_DOCS,
        }
        headers.update(
            {
                "x-ratelimit-limit": str(budget.limit if budget else limit),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-used": str(budget.limit if budget else limit),
                "x-ratelimit-reset": reset,
                "x-ratelimit-resource": "core",
            }
        )
    elif fault.kind == "secondary_limit":
        body = {
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you "
            "try again.",
            "documentation_url": RATE_LIMIT_DOCS + "#about-secondary-rate-limits",
        }
        spent = budget or Budget(limit, limit, float(reset))
        headers.update(spent.headers())
        if fault.retry_after is not None:
            headers["retry-after"] = str(fault.retry_after)
    elif fault.kind == "expired_token":
        body = {"message": "Bad credentials", "documentation_url": DOCS}
    elif fault.kind == "expired_artifact":
        body = {"message": "Artifact has expired", "documentation_url": DOCS}
    else:
        body = {"message": "Bad Gateway" if fault.status == 502 else "Server Error"}
    body.setdefault("status", str(fault.status))
    return fault.status, headers, json.dumps(body).encode()
