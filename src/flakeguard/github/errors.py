"""Errors of the GitHub client. Messages name the endpoint *template* and GitHub's message only:
never a token, a key, a signed URL or a query string."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

RateLimitKind = Literal["primary", "secondary", "reserve"]


class GitHubError(Exception):
    """A GitHub API call failed. `status` is the HTTP status (None when no response arrived)."""

    def __init__(self, status: int | None, message: str, endpoint: str) -> None:
        self.status = status
        self.message = message[:300]
        self.endpoint = endpoint
        super().__init__(
            f"GitHub {endpoint}: {status if status is not None else 'no response'}: {self.message}"
        )


class NotFound(GitHubError):
    """404: the resource does not exist, or the credentials cannot see it."""


class Unauthorized(GitHubError):
    """401 that persisted after one credential refresh (bad key, revoked app, wrong app id)."""


class RateLimited(GitHubError):
    """A primary or secondary rate limit (or the configured reserve) stops calls until `resume_at` (UTC).

    The worker should delay the job to `resume_at` without spending an attempt, and hold the queue.
    """

    def __init__(
        self,
        resume_at: datetime,
        kind: RateLimitKind,
        endpoint: str = "",
        status: int | None = None,
        message: str = "",
    ) -> None:
        self.resume_at = resume_at
        self.kind = kind
        super().__init__(status, message or f"{kind} rate limit until {resume_at.isoformat()}", endpoint)


class ArtifactExpired(GitHubError):
    """410 Gone on an artifact download: its retention ran out. Not worth a retry."""


class ArtifactTooLarge(GitHubError):
    """The artifact is bigger than the configured cap (from size_in_bytes, Content-Length or streaming)."""

    def __init__(self, endpoint: str, limit: int, size: int | None) -> None:
        self.limit = limit
        self.size = size
        what = f"{size} bytes" if size is not None else "more"
        super().__init__(None, f"artifact is {what}, over the limit of {limit} bytes", endpoint)


class TransientGitHubError(GitHubError):
    """5xx responses, timeouts or connection errors that persisted through the client's retries."""
