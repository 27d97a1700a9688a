"""Contexts (CI matrix legs) and tests that never passed. Read top to bottom as documentation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flakeguard.analysis import AnalysisConfig, Observation, Status, Verdict, analyze_test, classify
from flakeguard.model import Outcome

T0 = datetime(2025, 3, 1, tzinfo=UTC)
P, F = Outcome.PASSED, Outcome.FAILED


def run(
    i: int, outcome: Outcome, *, context: str | None = None, ordinal: int = 0, sha: str | None = None
) -> Observation:
    return Observation(
        outcome=outcome,
        started_at=T0 + timedelta(hours=6 * i),
        head_sha=sha or f"c{i:03d}",
        branch="main",
        run_id=1000 + i,
        ordinal=ordinal,
        run_failure_share=0.05,
        context=context,
    )


def verdict_of(observations: list[Observation]) -> Verdict:
    now = max(o.started_at for o in observations) + timedelta(hours=1)
    return classify(observations, AnalysisConfig(), None, now)


# ---------------------------------------------------------------------- never passed: never healthy


def test_failing_all_six_executions_of_its_only_run_is_broken() -> None:
    # Surefire with rerunFailingTestsCount=5: the test and its five reruns failed, in its first run.
    verdict = verdict_of([run(0, F, ordinal=k) for k in range(6)])
    assert verdict.status is Status.BROKEN
    assert verdict.reason.startswith("failing on the last 6 executions across 1 commit since")
    assert verdict.confidence == pytest.approx(1 - 1 / 7)  # a flaky test fails 6 of 6 with E[p^6] = 1/7


def test_a_single_failure_of_a_new_test_is_not_enough_to_judge() -> None:
    verdict = verdict_of([run(0, F)])
    assert verdict.status is Status.INSUFFICIENT_DATA


def test_a_test_that_passed_once_in_the_window_is_judged_by_its_streak() -> None:
    # a pass, then six failing executions on one commit: one commit is no streak (retries of a
    # broken commit and of a flaky one look alike); the streak rule needs two commits
    verdict = verdict_of([run(0, P), *[run(1, F, ordinal=k) for k in range(6)]])
    assert verdict.status is Status.HEALTHY


# ------------------------------------------------------------------------------------- contexts


def test_passing_in_one_leg_and_failing_in_another_of_the_same_run_is_broken_in_that_leg() -> None:
    verdict = verdict_of([run(0, P, context="py3.10"), run(0, F, context="py3.11", ordinal=1)])
    assert verdict.status is Status.BROKEN
    assert verdict.reason.startswith("py3.11: failing on the last 1 executions across 1 commit")
    assert verdict.reason.endswith("no pass since here, passing in other contexts")
    assert verdict.confidence == pytest.approx(1 - 1 / 3)
    contexts = verdict.evidence[-1].to_json()
    assert contexts == {
        "kind": "contexts",
        "contexts": [
            {
                "context": "py3.10",
                "status": "insufficient_data",
                "reason": "only 1 usable executions (need 5)",
            },
            {"context": "py3.11", "status": "broken", "reason": verdict.reason.removeprefix("py3.11: ")},
        ],
    }


def test_a_leg_that_fails_on_every_commit_is_broken_there_and_the_test_is_not_flaky() -> None:
    history = [o for i in range(8) for o in (run(i, P, context="ubuntu"), run(i, F, context="windows"))]
    verdict = verdict_of(history)
    assert verdict.status is Status.BROKEN
    assert verdict.evidence[0].to_json()["context"] == "windows"
    assert verdict.evidence[0].to_json()["failing_executions"] == 8
    # without contexts, the same executions pass and fail on every commit: what flakiness looks like
    merged = [
        Observation(o.outcome, o.started_at, o.head_sha, o.branch, o.run_id, ordinal=k % 2)
        for k, o in enumerate(history)
    ]
    assert verdict_of(merged).status is Status.FLAKY


def test_flaky_means_passing_and_failing_in_the_same_context() -> None:
    history = [run(i, P, context="py3.11") for i in range(6)] + [
        run(6, F, context="py3.11"),
        run(6, P, context="py3.11", ordinal=1),  # the retry in the same leg passed
        *[run(i, P, context="py3.10") for i in range(7)],
    ]
    verdict = verdict_of(history)
    assert verdict.status is Status.FLAKY
    assert verdict.reason == "py3.11: passed and failed on the same commit c006 (in_run_retry)"
    assert [c["status"] for c in verdict.evidence[-1].to_json()["contexts"]] == ["healthy", "flaky"]  # type: ignore[index]


def test_a_test_with_one_context_is_classified_as_before() -> None:
    history = [run(i, P, context="py3.11") for i in range(6)]
    plain = [run(i, P) for i in range(6)]
    assert verdict_of(history) == verdict_of(plain)
    assert all(e.kind != "contexts" for e in verdict_of(history).evidence)


def test_usable_executions_add_up_over_contexts() -> None:
    history = [o for i in range(6) for o in (run(i, P, context="a"), run(i, P, context="b"))]
    analysis = analyze_test(history, AnalysisConfig(), None, T0 + timedelta(days=3))
    assert analysis.verdict.status is Status.HEALTHY
    assert analysis.verdict.usable_executions == 12
    assert analysis.executions == 12
