"""GitHub webhook helpers, pure: signature check and the fields FlakeGuard routes on.

The HTTP endpoint (server/) reads the raw body, calls `verify_signature` before parsing JSON, dedups
on `X-GitHub-Delivery`, and enqueues.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "SIGNATURE_HEADER",
    "WorkflowRunCompleted",
    "ingest_priority",
    "parse_workflow_run_completed",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body` (for tests and the fake)."""
    return _PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when `header` is `sha256=<hex HMAC-SHA256(secret, raw body)>`; compared in constant time.
    A missing/malformed header or an empty secret is False."""
    if not secret or not header or not header.startswith(_PREFIX):
        return False
    expected = sign(secret, body)
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())


@dataclass(frozen=True, slots=True)
class WorkflowRunCompleted:
    """What `runs:ingest` needs from a `workflow_run` `completed` delivery."""

    workflow_run_id: int
    run_attempt: int
    owner: str
    repo: str
    installation_id: int | None
    head_sha: str
    head_branch: str | None
    event: str
    conclusion: str | None
    default_branch: str | None
    pull_requests: int


def parse_workflow_run_completed(event: str | None, payload: dict[str, Any]) -> WorkflowRunCompleted | None:
    """The run of a `workflow_run` `completed` delivery; None for any other event or action.
    Raises KeyError/TypeError/ValueError on a payload that lacks the documented fields."""
    if event != "workflow_run" or payload.get("action") != "completed":
        return None
    run = payload["workflow_run"]
    repo = payload["repository"]
    installation = payload.get("installation") or {}
    return WorkflowRunCompleted(
        workflow_run_id=int(run["id"]),
        run_attempt=int(run.get("run_attempt") or 1),
        owner=str(repo["owner"]["login"]),
        repo=str(repo["name"]),
        installation_id=int(installation["id"]) if installation.get("id") is not None else None,
        head_sha=str(run["head_sha"]),
        head_branch=run.get("head_branch"),
        event=str(run.get("event") or ""),
        conclusion=run.get("conclusion"),
        default_branch=repo.get("default_branch"),
        pull_requests=len(run.get("pull_requests") or []),
    )


def ingest_priority(run: WorkflowRunCompleted) -> Literal["high", "normal"]:
    """Push to the default branch → high; pull requests and everything else → normal."""
    if run.event == "push" and run.head_branch is not None and run.head_branch == run.default_branch:
        return "high"
    return "normal"
