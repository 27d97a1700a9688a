"""Failure signatures: normalized fingerprints, dying shards, a test's failures by signature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flakeguard.analysis import (
    AnalysisConfig,
    Observation,
    Status,
    analyze_test,
    count_failing_tests,
    describe_groups,
    failure_signature,
    fingerprint,
    group_failures,
    impact,
    infrastructure_signatures,
)
from flakeguard.model import Outcome

T0 = datetime(2025, 3, 1, tzinfo=UTC)


# ------------------------------------------------------------------------------- normalization


def test_what_changes_between_occurrences_does_not_change_the_signature() -> None:
    first = failure_signature(
        "TimeoutError: waited 30.02s for job 0x7f3a9c2b1d60 at 2025-03-01T10:00:03Z",
        'Traceback (most recent call last):\n  File "/home/runner/work/app/app/tests/test_jobs.py", '
        'line 42, in test_run\n  File "/tmp/pytest-of-runner/pytest-12/test_run0/conftest.py", line 7, in x\n'
        "TimeoutError",
    )
    second = failure_signature(
        "TimeoutError: waited 31.9s for job 0x7f00deadbeef at 2025-03-04T18:22:41Z",
        'Traceback (most recent call last):\n  File "/__w/app/app/tests/test_jobs.py", line 44, in test_run\n'
        '  File "/tmp/pytest-of-runner/pytest-97/test_run0/conftest.py", line 7, in x\nTimeoutError',
    )
    assert first == second
    assert first is not None and len(first) == 16
    other = failure_signature("AssertionError: assert 500 == 200", "")
    assert other != first


def test_the_fingerprint_is_readable() -> None:
    found = fingerprint(
        "Connection refused to 10.0.3.7:5432 (attempt 3, uuid 123e4567-e89b-12d3-a456-426614174000)", None
    )
    assert found is not None
    assert found.headline == "Connection refused to <n>:<n> (attempt <n>, uuid <uuid>)"
    assert found.frames == ()


@pytest.mark.parametrize(
    ("details", "frames"),
    [
        (  # Python: outermost first; the innermost project frames, innermost first
            'Traceback (most recent call last):\n  File "/usr/lib/python3.11/site-packages/_pytest/x.py", '
            'line 1, in call\n  File "tests/test_a.py", line 10, in test_a\n  File "app/db.py", line 99, '
            "in query\nValueError: bad",
            ("query (app/db.py)", "test_a (tests/test_a.py)"),
        ),
        (  # Java: innermost first; JUnit and JDK frames are not the project's
            "java.lang.AssertionError: expected 1\n\tat org.junit.Assert.fail(Assert.java:89)\n"
            "\tat com.acme.CartTest.adds(CartTest.java:31)\n"
            "\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)",
            ("com.acme.CartTest.adds",),
        ),
        (  # JavaScript
            "Error: expect(received).toBe(expected)\n"
            "    at Object.<anonymous> (/repo/src/cart.test.js:12:5)\n"
            "    at processTicksAndRejections (node:internal/process/task_queues:95:5)",
            ("Object.<anonymous> (/repo/src/cart.test.js)",),
        ),
        (  # .NET
            "System.Exception : boom\n   at Acme.Tests.CartTests.Adds() in /src/CartTests.cs:line 18",
            ("Acme.Tests.CartTests.Adds (/src/CartTests.cs)",),
        ),
        ("cart_test.go:27: expected 2, got 3", ("cart_test.go",)),
    ],
)
def test_top_frames_are_read_in_the_common_formats(details: str, frames: tuple[str, ...]) -> None:
    found = fingerprint(None, details)
    assert found is not None
    assert found.frames == frames


def test_nothing_to_fingerprint_gives_no_signature() -> None:
    assert failure_signature(None, None) is None
    assert failure_signature("", "  \n ") is None


# ----------------------------------------------------------------------- infrastructure failures


def test_a_dying_shard_is_many_tests_failing_with_one_signature_in_one_run() -> None:
    failures = [(f"test_{i}", "shard-died") for i in range(120)] + [("test_a", "assert-a"), ("test_b", None)]
    counts = count_failing_tests([*failures, ("test_0", "shard-died")])  # a test counts once
    assert counts == {"shard-died": 120, "assert-a": 1}
    # 120 of 400 tests (30 %) with one signature: at least 10 tests and at least 15 % of the run
    assert infrastructure_signatures(counts, 400) == frozenset({"shard-died"})
    # 120 of 1000 (12 %) is not: a real regression of a shared fixture can fail that many
    assert infrastructure_signatures(counts, 1000) == frozenset()
    # a small suite: 6 of 20 tests is 30 % but fewer than 10 tests
    assert infrastructure_signatures({"s": 6}, 20) == frozenset()
    assert infrastructure_signatures({"s": 6}, 20, AnalysisConfig(infra_signature_min_tests=5)) == {"s"}
    assert infrastructure_signatures({}, 0) == frozenset()


def obs(
    i: int, outcome: Outcome, *, signature: str | None = None, infrastructure: bool = False
) -> Observation:
    return Observation(
        outcome=outcome,
        started_at=T0 + timedelta(hours=6 * i),
        head_sha=f"c{i:03d}",
        branch="main",
        run_id=1000 + i,
        run_failure_share=0.3 if infrastructure else 0.01,
        signature=signature,
        infrastructure=infrastructure,
    )


def test_an_infrastructure_failure_is_no_evidence_against_the_test() -> None:
    # two shard deaths on main, each a failure that went away: without the flag, two episodes
    history = [obs(i, Outcome.PASSED) for i in range(20)]
    history[5] = obs(5, Outcome.ERROR, signature="shard", infrastructure=True)
    history[14] = obs(14, Outcome.ERROR, signature="shard", infrastructure=True)
    analysis = analyze_test(history, AnalysisConfig(), None, T0 + timedelta(days=6))
    assert analysis.verdict.status is Status.HEALTHY
    (infra,) = [e.to_json() for e in analysis.verdict.evidence if e.kind == "infrastructure_runs_excluded"]
    assert infra == {
        "kind": "infrastructure_runs_excluded",
        "runs": [1005, 1014],
        "executions": 2,
        "failures": 2,
    }
    assert analysis.impact == 0.0
    assert impact(history, AnalysisConfig()) == 0.0
    unflagged = [obs(o.run_id - 1000, o.outcome, signature=o.signature) for o in history]
    assert (
        analyze_test(unflagged, AnalysisConfig(), None, T0 + timedelta(days=6)).verdict.status is Status.FLAKY
    )


# ----------------------------------------------------------------------- grouping per test


def test_failures_are_grouped_by_signature_newest_way_of_failing_first() -> None:
    history = [
        obs(0, Outcome.FAILED, signature="timeout"),
        obs(1, Outcome.PASSED),
        obs(2, Outcome.FAILED, signature="timeout"),
        obs(3, Outcome.FAILED, signature="npe"),
        obs(4, Outcome.ERROR, signature="shard", infrastructure=True),
        obs(5, Outcome.FAILED),  # no message, no stack: not grouped
        obs(6, Outcome.FAILED, signature="timeout"),
    ]
    groups = group_failures(history)
    assert [
        (g.signature, g.failures, g.first_seen_sha, g.last_seen_sha, g.infrastructure) for g in groups
    ] == [
        ("shard", 1, "c004", "c004", 1),
        ("npe", 1, "c003", "c003", 0),
        ("timeout", 3, "c000", "c006", 0),
    ]
    assert describe_groups(groups) == "3 distinct failures, the newest first seen on c004"
    assert describe_groups(groups[1:2]) == "1 distinct failure, first seen on c003"
    assert describe_groups(()) == "no failure signatures"
    assert groups[0].to_json()["first_seen_at"] == (T0 + timedelta(hours=24)).isoformat()
    analysis = analyze_test(history, AnalysisConfig(), None, T0 + timedelta(days=2))
    assert analysis.failure_groups == groups
