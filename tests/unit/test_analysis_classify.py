"""The status rules on small histories worked out by hand. Read top to bottom as documentation."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from flakeguard.analysis import (
    AnalysisConfig,
    Observation,
    PreviousState,
    SameCodeScope,
    Status,
    Verdict,
    analyze_test,
    classify,
    impact,
)
from flakeguard.model import Outcome

T0 = datetime(2025, 3, 1, tzinfo=UTC)
CONFIG = AnalysisConfig()
P, F, S = Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED


def run(
    i: int,
    outcome: Outcome,
    *,
    sha: str | None = None,
    attempt: int = 1,
    ordinal: int = 0,
    branch: str = "main",
    share: float = 0.01,
) -> Observation:
    """The test's execution in run number i (six hours apart), by default on its own commit."""
    return Observation(
        outcome=outcome,
        started_at=T0 + timedelta(hours=6 * i) + timedelta(minutes=30 * (attempt - 1)),
        head_sha=sha or f"c{i:03d}",
        branch=branch,
        run_id=1000 + i,
        run_attempt=attempt,
        ordinal=ordinal,
        run_failure_share=share,
    )


def line(pattern: str, *, start: int = 0, branch: str = "main") -> list[Observation]:
    """One run per letter (P, F or S), oldest first, each on its own commit."""
    letters = {"P": P, "F": F, "S": S}
    return [run(start + i, letters[c], branch=branch) for i, c in enumerate(pattern)]


def now_after(observations: list[Observation]) -> datetime:
    return max(o.started_at for o in observations) + timedelta(hours=1)


def verdict_of(
    observations: list[Observation], previous: PreviousState | None = None, **config: object
) -> Verdict:
    return classify(observations, AnalysisConfig(**config), previous, now_after(observations))  # type: ignore[arg-type]


def beta_sf_integer(a: int, b: int, x: float) -> float:
    """P(p > x) for p ~ Beta(a, b), integer a and b: P(Binomial(a + b - 1, x) < a)."""
    n = a + b - 1
    return sum(math.comb(n, j) * x**j * (1 - x) ** (n - j) for j in range(a))


# ------------------------------------------------------------------------------ same-code evidence


def test_one_flake_on_the_same_sha_rerun_attempt() -> None:
    # ten green commits, then commit c010 fails and its re-run (attempt 2) passes
    history = [*line("P" * 10), run(10, F), run(10, P, attempt=2)]
    verdict = verdict_of(history)
    assert verdict.status is Status.FLAKY
    (evidence,) = verdict.evidence
    assert evidence.to_json() == {
        "kind": "same_sha_pass_and_fail",
        "head_sha": "c010",
        "scope": "rerun_attempt",
        "branch": "main",
        "passes": 1,
        "failures": 1,
        "runs": [1010],
        "last_failure_at": "2025-03-03T12:00:00+00:00",
    }
    # confidence = P(p > 0.02) under Beta(1 + 1 failure, 1 + 11 passes)
    assert verdict.confidence == pytest.approx(beta_sf_integer(2, 12, 0.02))
    assert verdict.confidence == pytest.approx(0.98**13 + 13 * 0.02 * 0.98**12)
    assert verdict.failure_probability == pytest.approx(2 / 14)
    assert verdict.last_flaky_evidence_at == run(10, F).started_at
    assert "c010" in verdict.reason


def test_one_flake_within_one_run_retry() -> None:
    # Surefire flakyFailure / pytest-rerunfailures: ordinal 0 failed, ordinal 1 passed
    history = [*line("PPPPP"), run(5, F), run(5, P, ordinal=1)]
    verdict = verdict_of(history)
    assert verdict.status is Status.FLAKY
    assert verdict.evidence[0].to_json()["scope"] == SameCodeScope.IN_RUN_RETRY.value


def test_same_sha_across_runs_on_main() -> None:
    # a push run and a scheduled run of the same main commit disagree
    history = [*line("PPPPP"), run(5, P, sha="abc"), run(6, F, sha="abc")]
    verdict = verdict_of(history)
    assert verdict.status is Status.FLAKY
    assert verdict.evidence[0].to_json()["scope"] == "across_runs"


def test_same_sha_across_runs_on_a_feature_branch_is_not_evidence_by_default() -> None:
    # pull-request runs test a merge with a moving base under the same head sha
    history = [
        *line("PPPPP"),
        run(5, P, sha="abc", branch="feature/x"),
        run(6, F, sha="abc", branch="feature/x"),
    ]
    assert verdict_of(history).status is Status.HEALTHY
    assert verdict_of(history, cross_run_evidence_on_unprotected=True).status is Status.FLAKY


def test_infrastructure_outage_gives_no_evidence() -> None:
    # run 5: 95 % of all tests failed (runner lost); its re-run passed. Not a flake of this test.
    history = [*line("PPPPP"), run(5, F, share=0.95), run(5, P, attempt=2)]
    verdict = verdict_of(history)
    assert verdict.status is Status.HEALTHY
    assert verdict.usable_executions == 6
    infra = [e.to_json() for e in verdict.evidence if e.kind == "infrastructure_runs_excluded"]
    assert infra == [{"kind": "infrastructure_runs_excluded", "runs": [1005], "executions": 1, "failures": 1}]


def test_infrastructure_share_is_configurable() -> None:
    history = [*line("PPPPP"), run(5, F, share=0.95), run(5, P, attempt=2)]
    assert verdict_of(history, infra_failure_share=1.0).status is Status.FLAKY


def test_skipped_executions_are_no_evidence() -> None:
    history = [*line("PPPPP"), run(5, S), run(5, P, attempt=2)]
    assert verdict_of(history).status is Status.HEALTHY


# ---------------------------------------------------------------------------------------- broken


def test_always_failing_is_broken_not_flaky() -> None:
    verdict = verdict_of(line("FFFFFF"))
    assert verdict.status is Status.BROKEN
    (evidence,) = verdict.evidence
    data = evidence.to_json()
    assert data["kind"] == "failing_since"
    assert data["failing_executions"] == 6
    assert data["commits"] == ["c005", "c004", "c003", "c002", "c001", "c000"]
    assert data["last_pass_at"] is None
    # never passed: a flaky test with a Beta(1, 1) prior fails 6 times in a row with E[p^6] = 1/7
    assert verdict.confidence == pytest.approx(1 - 1 / 7)


def test_broken_after_a_long_green_history_takes_two_commits() -> None:
    assert verdict_of(line("P" * 20 + "F")).status is Status.HEALTHY  # one commit: could be anything
    verdict = verdict_of(line("P" * 20 + "FF"))
    assert verdict.status is Status.BROKEN
    # E[p^2] under Beta(1 + 0, 1 + 20) = 1/22 * 2/23
    assert verdict.evidence[0].to_json()["chance_if_flaky"] == pytest.approx(2 / (22 * 23))


def test_a_flaky_test_failing_twice_in_a_row_is_not_broken() -> None:
    # alternating history: 10 passes and 10 failures before the final two-commit failure streak
    history = line("PF" * 10 + "F")
    verdict = verdict_of(history)
    # E[p^2] under Beta(1 + 9, 1 + 10) = 10/21 * 11/22 = 0.24, far above broken_alpha = 0.01
    assert verdict.status is Status.FLAKY
    assert verdict.evidence[0].kind == "protected_branch_failure_rate"


def test_broken_wins_over_flaky() -> None:
    history = [run(0, F), run(0, P, attempt=2), *line("P" * 10, start=1), *line("FFF", start=11)]
    verdict = verdict_of(history)
    assert verdict.status is Status.BROKEN


def test_a_failure_on_a_commit_that_also_passed_ends_the_broken_streak() -> None:
    history = [*line("P" * 10), run(10, F), run(11, F, sha="c012"), run(12, F), run(12, P, attempt=2)]
    assert verdict_of(history).status is Status.FLAKY


def test_breakage_on_a_feature_branch_only_does_not_make_the_test_broken() -> None:
    history = [*line("P" * 8), *line("FFF", start=8, branch="feature/x"), *line("P", start=11)]
    assert verdict_of(history).status is Status.HEALTHY


def test_fixed_then_stable_is_healthy_and_says_why() -> None:
    # four failing commits (a regression), then fixed: consistent on every commit, so not flaky
    verdict = verdict_of(line("FFFF" + "P" * 15))
    assert verdict.status is Status.HEALTHY
    assert [e.to_json() for e in verdict.evidence] == [
        {
            "kind": "regression_episodes",
            "episodes": 1,
            "failing_executions": 4,
            "last_episode_end": run(3, F).started_at.isoformat(),
        }
    ]


# ------------------------------------------------------------------------------------ statistics


def statistical_history(extra_passes: int) -> list[Observation]:
    # 20 main commits with two isolated failures (10 %), then `extra_passes` green commits
    pattern = "PPPPFPPPPPPPPPFPPPPP" + "P" * extra_passes
    return line(pattern)


def test_statistical_activation_at_ten_percent_of_protected_commits() -> None:
    verdict = verdict_of(statistical_history(0))
    assert verdict.status is Status.FLAKY
    assert verdict.statistically_flaky
    assert verdict.evidence[0].to_json() == {
        "kind": "protected_branch_failure_rate",
        "failures": 2,
        "commits": 20,
        "failure_rate": 0.1,
        "threshold": 0.1,
        "held_by_hysteresis": False,
    }


# The statistics rule on its own (the commit-order rule, tested in test_analysis_episodes.py, would
# also call some of these histories flaky: two separate failures that recovered are its evidence).
RATE_ONLY = {"commit_order_evidence": False}


def test_statistics_need_a_minimum_sample() -> None:
    assert verdict_of(line("PPPPFPPPF"), **RATE_ONLY).status is Status.HEALTHY  # 2 of 9 commits: too few
    assert verdict_of(line("PPPPPPPPPF")).status is Status.HEALTHY  # 1 of 10: one event is no rate


def test_statistics_only_look_at_protected_branches() -> None:
    history = line("PPPPFPPPPPPPPPFPPPPP", branch="feature/x")
    assert verdict_of(history).status is Status.HEALTHY
    assert verdict_of(history, protected_branches=("feature/*",)).status is Status.FLAKY
    assert verdict_of(history, default_branch="feature/x").status is Status.FLAKY


def test_hysteresis_holds_between_the_thresholds_and_clears_below_resolution() -> None:
    flaky = PreviousState(Status.FLAKY, statistically_flaky=True)
    # 2 failed of 30 commits = 6.7 %: below activation (10 %) but above resolution (5 %)
    assert verdict_of(statistical_history(10), **RATE_ONLY).status is Status.HEALTHY
    held = verdict_of(statistical_history(10), previous=flaky, **RATE_ONLY)
    assert held.status is Status.FLAKY
    assert held.evidence[0].to_json()["held_by_hysteresis"] is True
    assert held.statistically_flaky
    # 2 failed of 41 commits = 4.9 %: cleared
    cleared = verdict_of(statistical_history(21), previous=flaky, **RATE_ONLY)
    assert cleared.status is Status.HEALTHY
    assert not cleared.statistically_flaky


def test_a_regression_episode_counts_as_one_failed_commit() -> None:
    # 3 consecutive failing commits (a regression) + 1 isolated failure among 17 commits:
    # 2 failed "commits" of 15 = 13 % -> flaky; counted per execution it would be 4 of 17.
    verdict = verdict_of(line("PPPFFFPPPPPPFPPPP"))
    assert verdict.status is Status.FLAKY
    assert verdict.evidence[0].to_json()["failures"] == 2
    assert verdict.evidence[0].to_json()["commits"] == 15


# ------------------------------------------------------------------------------- insufficient data


def test_fewer_usable_executions_than_the_threshold_is_insufficient_data() -> None:
    verdict = verdict_of(line("PPPP"))
    assert verdict.status is Status.INSUFFICIENT_DATA
    assert verdict.confidence == 0.0
    assert verdict.reason == "only 4 usable executions (need 5)"
    assert verdict_of(line("PPPPP")).status is Status.HEALTHY


def test_evidence_beats_the_minimum_number_of_runs() -> None:
    assert verdict_of([run(0, F), run(0, P, ordinal=1)]).status is Status.FLAKY
    assert verdict_of(line("FF")).status is Status.BROKEN


def test_healthy_confidence_is_the_posterior_probability_of_a_low_failure_rate() -> None:
    verdict = verdict_of(line("P" * 30))
    # P(p <= 0.02) under Beta(1, 31) = 1 - 0.98^31
    assert verdict.confidence == pytest.approx(1 - 0.98**31)


# --------------------------------------------------------------------------------- miscellaneous


def test_observations_older_than_the_lookback_are_ignored() -> None:
    old = [run(0, F), run(0, P, attempt=2)]
    recent = [*line("P" * 6, start=200)]  # 50 days later
    assert verdict_of(old + recent).status is Status.HEALTHY
    assert verdict_of(old + recent, lookback_days=60).status is Status.FLAKY


def test_verdicts_serialize_to_json() -> None:
    history = [*line("PPPPP"), run(5, F, share=0.95), run(6, F), run(6, P, attempt=2)]
    verdict = verdict_of(history)
    data = json.loads(json.dumps(verdict.to_json()))
    assert data["status"] == "flaky"
    assert [e["kind"] for e in data["evidence"]] == ["same_sha_pass_and_fail", "infrastructure_runs_excluded"]


def test_observations_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Observation(P, datetime(2025, 1, 1), "sha", "main", 1)


def test_impact_weighs_failures_on_otherwise_green_runs() -> None:
    history = [
        run(0, F, share=0.01),  # alone in a green run: 0.99
        run(0, F, share=0.01, ordinal=1),  # the same attempt again: counted once
        run(1, F, share=0.50),  # half the suite failed too: 0.5
        run(2, F, share=0.95),  # infrastructure: 0
        run(3, P, share=0.02),
    ]
    assert impact(history, CONFIG) == pytest.approx(0.99 + 0.5)


def test_analyze_test_bundles_score_verdict_and_impact() -> None:
    history = [*line("P" * 10), run(10, F), run(10, P, attempt=2)]
    analysis = analyze_test(history, CONFIG, None, now_after(history))
    assert (analysis.executions, analysis.failures) == (12, 1)
    assert analysis.failure_rate == pytest.approx(1 / 12)
    assert analysis.last_failure_at == run(10, F).started_at
    assert analysis.score is not None and not analysis.score.is_flaky
    assert analysis.verdict.status is Status.FLAKY
    assert analysis.impact == pytest.approx(0.99)
