"""What the fake GitHub knows: installations, repositories, workflow runs with their attempts,
artifacts (each made by one attempt), check runs. Thread-safe behind one re-entrant lock.

A run's attempts follow a real timeline: attempt n starts after attempt n-1 completed, and an
artifact is uploaded while its attempt runs, so its `created_at` falls inside that attempt.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

JSON = dict[str, Any]

ATTEMPT_DURATION = timedelta(minutes=3)
UPLOAD_AFTER = timedelta(minutes=2)  # artifacts are uploaded this long after their attempt started
ATTEMPT_SPACING = timedelta(minutes=5)  # between the starts of the attempts of a run made at once
RERUN_DELAY = timedelta(minutes=1)  # a re-run starts at least this long after the previous attempt ended


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Installation:
    id: int
    account: str
    account_id: int


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    installation_id: int
    default_branch: str
    private: bool


@dataclass
class Attempt:
    number: int
    started_at: datetime
    status: str
    conclusion: str | None

    @property
    def completed_at(self) -> datetime | None:
        return self.started_at + ATTEMPT_DURATION if self.status == "completed" else None

    @property
    def updated_at(self) -> datetime:
        return self.completed_at or self.started_at


@dataclass
class Run:
    id: int
    owner: str
    repo: str
    head_sha: str
    branch: str | None
    event: str
    run_number: int
    created_at: datetime
    display_title: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def latest(self) -> Attempt:
        return self.attempts[-1]

    def attempt(self, number: int) -> Attempt | None:
        return self.attempts[number - 1] if 1 <= number <= len(self.attempts) else None


@dataclass
class Artifact:
    id: int
    owner: str
    repo: str
    run_id: int
    attempt: int  # never shown: GitHub's artifact JSON does not say which attempt made it
    name: str
    data: bytes
    created_at: datetime
    expired: bool = False


@dataclass
class Token:
    installation_id: int | None  # None: a plain token with access to every repository
    expires_at: datetime


@dataclass
class CheckRunRecord:
    """A check run as the fake holds it; `annotations` accumulate over create and updates."""

    id: int
    owner: str
    repo: str
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    external_id: str
    details_url: str | None
    started_at: str | None
    completed_at: str | None
    output: JSON
    annotations: list[JSON] = field(default_factory=list)
    actions: list[JSON] = field(default_factory=list)
    requests: list[JSON] = field(default_factory=list)  # every accepted body, create first


class State:
    """The fake's data; every method takes the lock, so server threads and the test can share it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.started = now()
        self.installations: dict[int, Installation] = {}
        self.repos: dict[tuple[str, str], Repo] = {}
        self.runs: dict[tuple[str, str, int], Run] = {}
        self.artifacts: dict[int, Artifact] = {}
        self.check_runs: dict[int, CheckRunRecord] = {}
        self._next_id = 1000

    def new_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    # -- set-up ------------------------------------------------------------------------------------

    def add_installation(self, installation_id: int, account: str, account_id: int) -> None:
        with self.lock:
            if installation_id not in self.installations:
                self.installations[installation_id] = Installation(installation_id, account, account_id)

    def add_repository(
        self, owner: str, repo: str, installation_id: int, default_branch: str, private: bool
    ) -> int:
        with self.lock:
            existing = self.repos.get((owner, repo))
            rid = existing.id if existing else self.new_id()
            self.repos[(owner, repo)] = Repo(rid, owner, repo, installation_id, default_branch, private)
            return rid

    def add_run(
        self,
        owner: str,
        repo: str,
        run_id: int,
        *,
        head_sha: str,
        branch: str | None,
        event: str,
        conclusion: str | None,
        status: str,
        run_attempt: int,
        at: datetime | None,
        artifacts: Mapping[str, bytes],
        display_title: str,
    ) -> list[int]:
        """A new run (attempts 1..`run_attempt`, the first started at `at`), or a re-run of a known one
        (attempts up to `run_attempt`, started at `at` or now, never before the previous attempt
        ended). The artifacts are uploaded by the latest attempt. Returns their ids."""
        when = (at or now()).astimezone(UTC).replace(microsecond=0)
        with self.lock:
            run = self.runs.get((owner, repo, run_id))
            if run is None:
                number = 1 + sum(1 for r in self.runs.values() if (r.owner, r.repo) == (owner, repo))
                run = Run(run_id, owner, repo, head_sha, branch, event, number, when, display_title)
                self.runs[(owner, repo, run_id)] = run
                for n in range(1, run_attempt + 1):
                    run.attempts.append(Attempt(n, when + ATTEMPT_SPACING * (n - 1), "completed", conclusion))
            for n in range(len(run.attempts) + 1, run_attempt + 1):
                previous_end = run.latest.updated_at
                run.attempts.append(
                    Attempt(n, max(when, previous_end + RERUN_DELAY), "completed", conclusion)
                )
            latest = run.latest
            latest.status, latest.conclusion = status, conclusion
            ids = []
            for name, data in artifacts.items():
                aid = self.new_id()
                uploaded = latest.started_at + UPLOAD_AFTER
                self.artifacts[aid] = Artifact(
                    aid, owner, repo, run_id, latest.number, name, bytes(data), uploaded
                )
                ids.append(aid)
            return ids

    # -- look-ups ----------------------------------------------------------------------------------

    def repository(self, owner: str, repo: str) -> Repo | None:
        with self.lock:
            return self.repos.get((owner, repo))

    def installation(self, installation_id: int) -> Installation | None:
        with self.lock:
            return self.installations.get(installation_id)

    def run(self, owner: str, repo: str, run_id: int) -> Run | None:
        with self.lock:
            return self.runs.get((owner, repo, run_id))

    def runs_of(self, owner: str, repo: str) -> list[Run]:
        """The repository's runs, newest first (GitHub's order)."""
        with self.lock:
            runs = [r for r in self.runs.values() if (r.owner, r.repo) == (owner, repo)]
        return sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)

    def artifacts_of(self, owner: str, repo: str, run_id: int | None = None) -> list[Artifact]:
        """Artifacts of a repository, or of one run across all its attempts (as GitHub lists them)."""
        with self.lock:
            return [
                a
                for a in self.artifacts.values()
                if (a.owner, a.repo) == (owner, repo) and run_id in (None, a.run_id)
            ]

    def artifact(self, artifact_id: int) -> Artifact | None:
        with self.lock:
            return self.artifacts.get(artifact_id)

    def check_run(self, check_run_id: int) -> CheckRunRecord | None:
        with self.lock:
            return self.check_runs.get(check_run_id)
