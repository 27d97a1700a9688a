"""Turning GitHub's workflow-run and artifact JSON into what we store. Pure."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from flakeguard.store.repository import RunInfo

# Artifact names that hold test reports in practice ("test-results", "junit-xml", "surefire-reports",
# "pytest-report", "playwright-report"...). Overridable with ARTIFACT_NAME_PATTERNS.
DEFAULT_ARTIFACT_PATTERNS = (
    "*test*",
    "*junit*",
    "*surefire*",
    "*failsafe*",
    "*report*",
    "*results*",
    "*xunit*",
)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def run_info(run: dict[str, Any], attempt: int | None = None) -> RunInfo:
    started = parse_time(run.get("run_started_at")) or parse_time(run.get("created_at")) or datetime.now(UTC)
    return RunInfo(
        run_id=int(run["id"]),
        run_attempt=int(attempt or run.get("run_attempt") or 1),
        head_sha=str(run.get("head_sha") or ""),
        branch=run.get("head_branch"),
        event=run.get("event"),
        conclusion=run.get("conclusion"),
        started_at=started,
        created_at=parse_time(run.get("created_at")),
        workflow_name=run.get("name"),
    )


def is_test_artifact(artifact: dict[str, Any], patterns: Sequence[str] = DEFAULT_ARTIFACT_PATTERNS) -> bool:
    name = str(artifact.get("name", "")).lower()
    return any(fnmatch.fnmatchcase(name, p.lower()) for p in patterns)


def artifacts_of_attempt(
    artifacts: Sequence[dict[str, Any]],
    attempt_started: datetime | None,
    next_attempt_started: datetime | None,
) -> list[dict[str, Any]]:
    """GitHub lists a run's artifacts across all its attempts; keep those made during one attempt.

    An artifact belongs to the attempt whose start precedes its `created_at`; artifacts without a
    `created_at` (nullable in the schema) are kept.
    """

    def made_during_attempt(artifact: dict[str, Any]) -> bool:
        created = parse_time(artifact.get("created_at"))
        if created is None or attempt_started is None:
            return True
        return created >= attempt_started and (next_attempt_started is None or created < next_attempt_started)

    return [a for a in artifacts if made_during_attempt(a)]


# The producer's `metadata` field -> GitHub's workflow-run field it must agree with.
METADATA_CHECKED = {
    "runStatus": "status",
    "conclusion": "conclusion",
    "headSha": "head_sha",
    "headBranch": "head_branch",
    "event": "event",
}


def metadata_mismatches(sent: dict[str, Any], run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The fields of a producer's run `metadata` (wire names) that GitHub's run contradicts."""
    return {
        name: {"sent": sent[name], "github": run.get(field)}
        for name, field in METADATA_CHECKED.items()
        if sent.get(name) is not None and sent[name] != run.get(field)
    }
