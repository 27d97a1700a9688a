"""Which artifacts of a workflow run hold test reports, and which attempt made them."""

from __future__ import annotations

from datetime import UTC, datetime

from flakeguard.pipeline.runs import artifacts_of_attempt, is_test_artifact, run_info

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


def artifact(name: str, created: str | None) -> dict[str, object]:
    return {"id": 1, "name": name, "created_at": created}


def test_test_report_artifacts_are_recognised_by_name() -> None:
    for name in (
        "test-results",
        "junit-xml",
        "surefire-reports",
        "pytest-report",
        "Playwright-Report",
        "xunit",
    ):
        assert is_test_artifact({"name": name})
    for name in ("coverage", "build-output", "dist", "logs"):
        assert not is_test_artifact({"name": name})
    assert is_test_artifact({"name": "my-junk"}, ["my-*"])


def test_artifacts_belong_to_the_attempt_that_made_them() -> None:
    first = artifact("test-results", "2026-11-01T12:30:00Z")
    second = artifact("test-results", "2026-11-01T13:30:00Z")
    undated = artifact("test-results", None)
    listed = [first, second, undated]
    assert artifacts_of_attempt(listed, T0, T1) == [first, undated]
    assert artifacts_of_attempt(listed, T1, None) == [second, undated]
    assert artifacts_of_attempt(listed, None, None) == listed


def test_run_info_prefers_the_attempt_start_and_defaults_the_attempt() -> None:
    run = {
        "id": 7,
        "head_sha": "abc",
        "head_branch": "main",
        "event": "push",
        "conclusion": "failure",
        "created_at": "2026-11-01T11:00:00Z",
        "run_started_at": "2026-11-01T12:00:00Z",
        "name": "CI",
    }
    info = run_info(run)
    assert (info.run_id, info.run_attempt, info.started_at, info.created_at) == (
        7,
        1,
        T0,
        datetime(2026, 11, 1, 11, 0, tzinfo=UTC),
    )
    assert run_info({**run, "run_attempt": 3}).run_attempt == 3
    assert run_info(run, attempt=2).run_attempt == 2


def test_producer_metadata_is_checked_against_githubs_run() -> None:
    from flakeguard.pipeline.runs import metadata_mismatches

    github = {"status": "completed", "conclusion": "failure", "head_sha": "a" * 40, "head_branch": "main"}
    sent = {"runStatus": "completed", "conclusion": "success", "headSha": "a" * 40, "headBranch": "main"}
    assert metadata_mismatches(sent, github) == {"conclusion": {"sent": "success", "github": "failure"}}
    assert metadata_mismatches({"headBranch": None, "triggeredBy": "webhook"}, github) == {}
